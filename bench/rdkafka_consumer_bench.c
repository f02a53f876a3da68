/*
 * rdkafka_consumer_bench — a librdkafka consumer that reads a topic from the beginning as
 * fast as it can and prints one machine-readable RESULT line (the counterpart of
 * `brook perf consume`).
 *
 * Build (Debian librdkafka-dev 2.0.2):
 *   cc -O2 -o rdkafka_consumer_bench bench/rdkafka_consumer_bench.c -lrdkafka
 *
 * Example:
 *   rdkafka_consumer_bench -b 127.0.0.1:9092 -t bench -n 2000000
 *
 * Output (stdout, one line):
 *   RESULT records=N bytes=N seconds=S msgs_per_s=R mb_per_s=R client_cpu_s=S
 * where bytes counts record values and MB = 10^6 bytes. The partitions are assigned
 * directly (no group, no commits) at the earliest offset; the timer starts at the first
 * record and stops at the N-th. Exit status: 0 when N records were read, 1 on timeout or
 * a consumer error, 2 for bad arguments or setup errors.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "bench_util.h"

int main(int argc, char **argv) {
    const char *bootstrap = NULL, *topic = "bench";
    long long count = 0;
    double timeout = 120;
    const char *extra[64];
    int n_extra = 0, c;
    while ((c = getopt(argc, argv, "b:t:n:T:X:")) != -1) {
        switch (c) {
        case 'b': bootstrap = optarg; break;
        case 't': topic = optarg; break;
        case 'n': count = atoll(optarg); break;
        case 'T': timeout = atof(optarg); break;
        case 'X':
            if (n_extra >= 64 || !strchr(optarg, '=')) return 2;
            extra[n_extra++] = optarg;
            break;
        default:
            fprintf(stderr, "usage: %s -b BOOTSTRAP -t TOPIC -n RECORDS [-T timeout_s] [-X key=value]\n", argv[0]);
            return 2;
        }
    }
    if (!bootstrap || count <= 0) {
        fprintf(stderr, "usage: %s -b BOOTSTRAP -t TOPIC -n RECORDS [-T timeout_s] [-X key=value]\n", argv[0]);
        return 2;
    }

    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (set_conf(conf, "bootstrap.servers", bootstrap) || set_conf(conf, "group.id", "rdkafka-consumer-bench") ||
        set_conf(conf, "enable.auto.commit", "false") || set_conf(conf, "enable.partition.eof", "false"))
        return 2;
    for (int i = 0; i < n_extra; i++) {
        char kv[1024];
        snprintf(kv, sizeof(kv), "%s", extra[i]);
        char *eq = strchr(kv, '=');
        *eq = 0;
        if (set_conf(conf, kv, eq + 1)) return 2;
    }
    char errstr[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (!rk) { fprintf(stderr, "rd_kafka_new: %s\n", errstr); return 2; }
    rd_kafka_poll_set_consumer(rk);

    /* Every partition of the topic, from the beginning. */
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    if (rd_kafka_metadata(rk, 0, rkt, &md, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR || !md ||
        md->topic_cnt != 1 || md->topics[0].partition_cnt < 1) {
        fprintf(stderr, "no metadata for topic %s\n", topic);
        return 2;
    }
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(md->topics[0].partition_cnt);
    for (int i = 0; i < md->topics[0].partition_cnt; i++)
        rd_kafka_topic_partition_list_add(parts, topic, md->topics[0].partitions[i].id)->offset =
            RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_resp_err_t e = rd_kafka_assign(rk, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    if (e) { fprintf(stderr, "assign: %s\n", rd_kafka_err2str(e)); return 2; }

    long long n = 0;
    uint64_t bytes = 0;
    double t0 = 0, cpu0 = 0, deadline = now_s() + timeout;
    int rc = 0;
    while (n < count) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m) {
            if (now_s() > deadline) { fprintf(stderr, "timed out after %lld records\n", n); rc = 1; break; }
            continue;
        }
        if (m->err) {
            fprintf(stderr, "consumer error: %s\n", rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            rc = 1;
            break;
        }
        if (n == 0) { t0 = now_s(); cpu0 = cpu_s(); }
        n++;
        bytes += m->len;
        rd_kafka_message_destroy(m);
    }
    double t1 = now_s(), cpu1 = cpu_s();
    double secs = t1 - t0;
    printf("RESULT records=%lld bytes=%" PRIu64 " seconds=%.3f msgs_per_s=%.0f mb_per_s=%.1f client_cpu_s=%.3f\n",
           n, bytes, secs, secs > 0 ? n / secs : 0, secs > 0 ? bytes / secs / 1e6 : 0, cpu1 - cpu0);
    fflush(stdout);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return rc;
}
