// rust_process.rs: Rust std threads and processes, one case per argument: "threads"
// (std::thread with Arc<Mutex>, an mpsc channel and a scoped join) and "command"
// (std::process::Command: output, exit status, piped stdin; needs /bin/echo, /bin/sh and
// /usr/bin/wc). Fixed output; exit 0, or 2 on a bad argument.
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;

fn threads() {
    let counter = Arc::new(Mutex::new(0u64));
    let (tx, rx) = mpsc::channel();
    let mut handles = Vec::new();
    for id in 0..4u64 {
        let counter = Arc::clone(&counter);
        let tx = tx.clone();
        handles.push(thread::spawn(move || {
            for _ in 0..10000 {
                *counter.lock().unwrap() += 1;
            }
            tx.send(id * id).unwrap();
            id
        }));
    }
    drop(tx);
    let ids: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    let squares: u64 = rx.iter().sum();
    let data = vec![1u64, 2, 3, 4];
    let doubled: u64 = thread::scope(|s| {
        let h = s.spawn(|| data.iter().map(|x| x * 2).sum::<u64>());
        h.join().unwrap()
    });
    println!("threads: counter={} ids={} squares={} scoped={}", *counter.lock().unwrap(), ids, squares, doubled);
}

fn command() {
    let out = Command::new("/bin/echo").args(["from", "echo"]).output().expect("echo");
    println!("echo: {:?} success={}", String::from_utf8_lossy(&out.stdout), out.status.success());
    let st = Command::new("/bin/sh").args(["-c", "exit 4"]).status().expect("sh");
    println!("sh exit code: {:?}", st.code());
    let mut child = Command::new("/usr/bin/wc").arg("-c").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("wc");
    child.stdin.take().unwrap().write_all(&[b'x'; 5000]).unwrap();
    let out = child.wait_with_output().unwrap();
    println!("wc -c: {}", String::from_utf8_lossy(&out.stdout).trim());
    match Command::new("/no/such/program").status() {
        Ok(_) => println!("missing: ran?"),
        Err(e) => println!("missing: {:?}", e.kind()),
    }
}

fn main() {
    match std::env::args().nth(1).as_deref() {
        Some("threads") => threads(),
        Some("command") => command(),
        _ => {
            eprintln!("usage: rust_process threads|command");
            std::process::exit(2);
        }
    }
}
