/* spin.c: infinite busy loop on a volatile counter, no syscalls; never exits (for timeout/kill tests); prints nothing. */
int main(void)
{
    volatile unsigned long counter = 0;
    for (;;)
        counter++;
}
