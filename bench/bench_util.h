/* Helpers shared by the librdkafka benchmark drivers (rdkafka_producer_bench.c,
 * rdkafka_consumer_bench.c): a monotonic clock, process CPU time, and a config setter that
 * reports what it refused. */
#ifndef BROOK_BENCH_UTIL_H
#define BROOK_BENCH_UTIL_H

#include <stdio.h>
#include <sys/resource.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

static inline double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline double cpu_s(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static inline int set_conf(rd_kafka_conf_t *conf, const char *k, const char *v) {
    char err[512];
    if (rd_kafka_conf_set(conf, k, v, err, sizeof(err)) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "config %s=%s: %s\n", k, v, err);
        return -1;
    }
    return 0;
}

#endif
