/* nbody.c: FP n-body (Sun + 4 gas giants, symplectic Euler, no libm); argv[1]=steps (default 1000); prints energy before/after "%.9f\n" (1000 steps: -0.004282724 / -0.004283039); exit 0. */
#if !defined(__x86_64__)
#include <math.h>
#endif
#include <stdio.h>
#include <stdlib.h>

/* Units: distance in AU, time in years, mass in solar masses => G = 4*pi^2. */
#define PI 3.141592653589793
#define GRAV (4.0 * PI * PI)
#define YEAR_DAYS 365.24
#define NBODIES 5

/* Square root without libm (static glibc would otherwise need -lm): one sqrtsd on x86-64. */
static inline double root(double x)
{
#if defined(__x86_64__)
    double r;
    __asm__("sqrtsd %1, %0" : "=x"(r) : "x"(x));
    return r;
#else
    return sqrt(x);
#endif
}

struct body {
    double pos[3];
    double vel[3]; /* AU per year */
    double mass;   /* solar masses */
};

/* Heliocentric state vectors (AU, AU/day) and masses (solar masses). */
static const double init_state[NBODIES][7] = {
    /* Sun */
    {0, 0, 0, 0, 0, 0, 1.0},
    /* Jupiter */
    {4.84143144246472090e+00, -1.16032004402742839e+00, -1.03622044471123109e-01,
     1.66007664274403694e-03, 7.69901118419740425e-03, -6.90460016972063023e-05,
     9.54791938424326609e-04},
    /* Saturn */
    {8.34336671824457987e+00, 4.12479856412430479e+00, -4.03523417114321381e-01,
     -2.76742510726862411e-03, 4.99852801234917238e-03, 2.30417297573763929e-05,
     2.85885980666130812e-04},
    /* Uranus */
    {1.28943695621391310e+01, -1.51111514016986312e+01, -2.23307578892655734e-01,
     2.96460137564761618e-03, 2.37847173959480950e-03, -2.96589568540237556e-05,
     4.36624404335156298e-05},
    /* Neptune */
    {1.53796971148509165e+01, -2.59193146099879641e+01, 1.79258772950371181e-01,
     2.68067772490389322e-03, 1.62824170038242295e-03, -9.51592254519715870e-05,
     5.15138902046611451e-05},
};

static void setup(struct body *b)
{
    for (int i = 0; i < NBODIES; i++) {
        for (int k = 0; k < 3; k++) {
            b[i].pos[k] = init_state[i][k];
            b[i].vel[k] = init_state[i][3 + k] * YEAR_DAYS;
        }
        b[i].mass = init_state[i][6] * GRAV; /* store G*m */
    }
    /* Move to the barycentric frame: give the Sun the opposite total momentum. */
    double p[3] = {0, 0, 0};
    for (int i = 1; i < NBODIES; i++)
        for (int k = 0; k < 3; k++)
            p[k] += b[i].vel[k] * b[i].mass;
    for (int k = 0; k < 3; k++)
        b[0].vel[k] = -p[k] / b[0].mass;
}

static double total_energy(const struct body *b)
{
    double e = 0.0;
    for (int i = 0; i < NBODIES; i++) {
        double v2 = b[i].vel[0] * b[i].vel[0] + b[i].vel[1] * b[i].vel[1] +
                    b[i].vel[2] * b[i].vel[2];
        e += 0.5 * b[i].mass * v2;
        for (int j = i + 1; j < NBODIES; j++) {
            double d[3];
            for (int k = 0; k < 3; k++)
                d[k] = b[i].pos[k] - b[j].pos[k];
            double r = root(d[0] * d[0] + d[1] * d[1] + d[2] * d[2]);
            /* masses hold G*m, so G*mi*mj = (G*mi)*(G*mj)/G */
            e -= b[i].mass * b[j].mass / r;
        }
    }
    return e / GRAV;
}

static void step(struct body *b, double dt)
{
    /* Kick: update velocities from pairwise gravitational accelerations. */
    for (int i = 0; i < NBODIES; i++) {
        for (int j = i + 1; j < NBODIES; j++) {
            double d[3];
            for (int k = 0; k < 3; k++)
                d[k] = b[i].pos[k] - b[j].pos[k];
            double r2 = d[0] * d[0] + d[1] * d[1] + d[2] * d[2];
            double inv_r3 = dt / (r2 * root(r2));
            for (int k = 0; k < 3; k++) {
                b[i].vel[k] -= d[k] * b[j].mass * inv_r3;
                b[j].vel[k] += d[k] * b[i].mass * inv_r3;
            }
        }
    }
    /* Drift: update positions with the new velocities. */
    for (int i = 0; i < NBODIES; i++)
        for (int k = 0; k < 3; k++)
            b[i].pos[k] += dt * b[i].vel[k];
}

int main(int argc, char **argv)
{
    long steps = argc > 1 ? strtol(argv[1], NULL, 10) : 1000;
    struct body bodies[NBODIES];
    setup(bodies);
    printf("%.9f\n", total_energy(bodies));
    for (long s = 0; s < steps; s++)
        step(bodies, 0.01);
    printf("%.9f\n", total_energy(bodies));
    return 0;
}
