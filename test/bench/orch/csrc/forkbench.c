/*
 * forkbench: the classic CGI spawn path from a large process.
 *
 * Allocates and touches N MiB (so the pages are resident and mapped by page
 * tables), then times fork() + execve("/bin/true") + waitpid() R times.
 * fork() copies the page tables of every resident mapping, which is what
 * Apache's prefork children (mod_cgi) and the cgid daemon (mod_cgid) pay when
 * they were forked from a parent that loaded every certificate. Prints one
 * JSON object: quantiles of the whole spawn and of fork() alone (time until
 * fork returns in the parent).
 *
 * usage: forkbench MiB runs
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b) {
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double quantile(double *v, int n, double q) {
	int rank = (int)(q * n + 0.999999);
	if (rank < 1) rank = 1;
	if (rank > n) rank = n;
	return v[rank - 1];
}

int main(int argc, char **argv) {
	if (argc != 3) {
		fprintf(stderr, "usage: forkbench MiB runs\n");
		return 2;
	}
	long mib = atol(argv[1]);
	int runs = atoi(argv[2]);
	if (mib < 0 || runs < 1 || runs > 100000) {
		fprintf(stderr, "forkbench: bad arguments\n");
		return 2;
	}
	size_t size = (size_t)mib << 20;
	char *mem = NULL;
	if (size > 0) {
		mem = malloc(size);
		if (mem == NULL) {
			perror("malloc");
			return 1;
		}
		long page = sysconf(_SC_PAGESIZE);
		for (size_t i = 0; i < size; i += page) mem[i] = (char)i;
	}
	double *total = calloc(runs, sizeof(double));
	double *forkt = calloc(runs, sizeof(double));
	char *const args[] = {"/bin/true", NULL};
	char *const env[] = {NULL};
	for (int i = 0; i < runs; i++) {
		double t0 = now_ms();
		pid_t pid = fork();
		if (pid == 0) {
			execve("/bin/true", args, env);
			_exit(127);
		}
		if (pid < 0) {
			perror("fork");
			return 1;
		}
		double t1 = now_ms();
		int status;
		if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			fprintf(stderr, "forkbench: child failed\n");
			return 1;
		}
		total[i] = now_ms() - t0;
		forkt[i] = t1 - t0;
	}
	double sum = 0;
	for (int i = 0; i < runs; i++) sum += total[i];
	qsort(total, runs, sizeof(double), cmp);
	qsort(forkt, runs, sizeof(double), cmp);
	/* Keep the memory live until the end. */
	volatile char sink = mem ? mem[size / 2] : 0;
	(void)sink;
	printf("{\"rss_mb\":%ld,\"n\":%d,\"p50_ms\":%.4f,\"p99_ms\":%.4f,\"mean_ms\":%.4f,\"fork_p50_ms\":%.4f}\n",
	       mib, runs, quantile(total, runs, 0.5), quantile(total, runs, 0.99), sum / runs, quantile(forkt, runs, 0.5));
	return 0;
}
