/* crash_ud2.c: executes __builtin_trap() (ud2 on x86-64) -> invalid opcode (SIGILL natively, exit status 132 from a shell); prints nothing. */
int main(void)
{
    __builtin_trap();
}
