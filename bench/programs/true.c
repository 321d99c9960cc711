/* true.c: the smallest static program (exit 0), the target of process_bench's fork+execve. */
int main(void) { return 0; }
