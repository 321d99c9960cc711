set terminal svg size 800,500 dynamic enhanced font 'sans,12' background rgb 'white'
set key bottom right
set grid
set output 'latency_cdf_job.svg'
set logscale x
set xlabel 'ms'
set ylabel 'fraction'
set title 'End-to-end job latency (restore + busybox true + teardown)'
plot 'cdf_job_us_vmfork.dat' using 1:2 with steps lw 2 title 'vmfork', 'cdf_job_us_firecracker-style.dat' using 1:2 with steps lw 2 title 'firecracker-style', 'cdf_job_us_naive.dat' using 1:2 with steps lw 2 title 'naive', 'cdf_job_us_bare-process.dat' using 1:2 with steps lw 2 title 'bare-process'
unset logscale x
set output 'latency_cdf_restore.svg'
set logscale x
set xlabel 'ms'
set ylabel 'fraction'
set title 'Restore until the vCPU can run'
plot 'cdf_restore_us_vmfork.dat' using 1:2 with steps lw 2 title 'vmfork', 'cdf_restore_us_firecracker-style.dat' using 1:2 with steps lw 2 title 'firecracker-style', 'cdf_restore_us_naive.dat' using 1:2 with steps lw 2 title 'naive', 'cdf_restore_us_kvm-floor.dat' using 1:2 with steps lw 2 title 'kvm-floor', 'cdf_restore_us_qemu.dat' using 1:2 with steps lw 2 title 'qemu'
unset logscale x
set output 'jobs_per_s.svg'
set logscale y
set xlabel 'workers'
set ylabel 'jobs/s (median)'
set xtics 1
set xrange [0.8:2.2]
set key top left
set title 'Jobs per second against workers'
plot 'jobs_per_s_vmfork.dat' using 1:2 with linespoints lw 2 pt 7 title 'vmfork', 'jobs_per_s_firecracker-style.dat' using 1:2 with linespoints lw 2 pt 7 title 'firecracker-style', 'jobs_per_s_naive.dat' using 1:2 with linespoints lw 2 pt 7 title 'naive', 'jobs_per_s_bare-process.dat' using 1:2 with linespoints lw 2 pt 7 title 'bare-process'
unset logscale y
set autoscale x
set xtics autofreq
set key bottom right
set output 'disk_vs_mem.svg'
set logscale xy
set xlabel 'guest memory (MiB)'
set ylabel 'bytes on disk (MiB)'
set key top left
set title 'Snapshot bytes on disk against guest memory size'
plot 'disk_vs_mem.dat' using 1:3 with linespoints lw 2 pt 7 title 'raw image (firecracker-style, naive)', 'disk_vs_mem.dat' using 1:2 with linespoints lw 2 pt 7 title 'vmfork page store'
unset logscale xy
