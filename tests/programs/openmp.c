/* openmp.c: OpenMP (gcc -fopenmp, libgomp) with 2 threads: a parallel region reports its team
 * size and a reduction sums 1..10^7. Prints "team=2 ids=3 sum=50000005000000"; exit 0. Not built
 * with musl (no libgomp there). */
#include <omp.h>
#include <stdio.h>

int main(void)
{
    int team = 0, ids = 0;
#pragma omp parallel num_threads(2)
    {
#pragma omp critical
        {
            team = omp_get_num_threads();
            ids |= 1 << omp_get_thread_num();
        }
    }
    long sum = 0;
#pragma omp parallel for num_threads(2) reduction(+ : sum)
    for (long i = 1; i <= 10000000; i++) sum += i;
    printf("team=%d ids=%d sum=%ld\n", team, ids, sum);
    return 0;
}
