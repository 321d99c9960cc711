// go_process.go: the Go runtime (its own threads, signals and futexes) in one static binary
// (CGO_ENABLED=0), one case per os.Args[1]: hello, goroutines, stdin, gc, sleep, exec (needs
// /bin/echo and /bin/sh). Output is fixed for a given input; exit 0, or 2 on a bad argument.
package main

import (
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"time"
)

func goroutines() {
	results := make(chan int64, 8)
	var wg sync.WaitGroup
	for w := int64(0); w < 8; w++ {
		wg.Add(1)
		go func(w int64) {
			defer wg.Done()
			var s int64
			for i := w*125000 + 1; i <= (w+1)*125000; i++ {
				s += i
			}
			results <- s
		}(w)
	}
	wg.Wait()
	close(results)
	var total int64
	for s := range results {
		total += s
	}
	ping, pong := make(chan int), make(chan int)
	go func() {
		for v := range ping {
			pong <- v + 1
		}
		close(pong)
	}()
	v := 0
	for i := 0; i < 10000; i++ {
		ping <- v
		v = <-pong
	}
	close(ping)
	fmt.Printf("goroutines: total=%d pingpong=%d\n", total, v)
}

func readStdin() {
	data, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Println("read error:", err)
		os.Exit(1)
	}
	fmt.Printf("stdin: %d bytes, %d lines, sha256 %x\n", len(data), strings.Count(string(data), "\n"), sha256.Sum256(data))
}

type node struct {
	next *node
	data [64]byte
}

func gcLoop() {
	var keep []*node
	var sum uint64
	for round := 0; round < 200; round++ {
		var head *node
		for i := 0; i < 10000; i++ {
			n := &node{next: head}
			n.data[i%64] = byte(i)
			head = n
		}
		for n := head; n != nil; n = n.next {
			for _, b := range n.data {
				sum += uint64(b)
			}
		}
		if round%50 == 0 {
			keep = append(keep, head)
		}
		buf := make([]byte, 1<<20)
		buf[round] = 1
		sum += uint64(buf[round])
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Printf("gc: sum=%d kept=%d collected=%v\n", sum, len(keep), ms.NumGC > 0)
}

func sleep() {
	start := time.Now()
	time.Sleep(200 * time.Millisecond)
	elapsed := time.Since(start)
	timer := time.NewTimer(50 * time.Millisecond)
	<-timer.C
	fmt.Printf("sleep: at least 200ms %v, under 10s %v\n", elapsed >= 200*time.Millisecond, elapsed < 10*time.Second)
}

func execEcho() {
	out, err := exec.Command("/bin/echo", "from", "echo").Output()
	fmt.Printf("exec: %q err=%v\n", out, err)
	err = exec.Command("/bin/sh", "-c", "exit 3").Run()
	if ee, ok := err.(*exec.ExitError); ok {
		fmt.Printf("exit code %d\n", ee.ExitCode())
	} else {
		fmt.Printf("unexpected: %v\n", err)
	}
	cmd := exec.Command("/bin/sh", "-c", "read x; echo got $x")
	cmd.Stdin = strings.NewReader("piped\n")
	out, err = cmd.Output()
	fmt.Printf("stdin pipe: %q err=%v\n", out, err)
}

func main() {
	mode := ""
	if len(os.Args) > 1 {
		mode = os.Args[1]
	}
	switch mode {
	case "hello":
		fmt.Println("hello, world")
	case "goroutines":
		goroutines()
	case "stdin":
		readStdin()
	case "gc":
		gcLoop()
	case "sleep":
		sleep()
	case "exec":
		execEcho()
	default:
		fmt.Fprintln(os.Stderr, "usage: go_process hello|goroutines|stdin|gc|sleep|exec")
		os.Exit(2)
	}
}
