/*
 * rdkafka_producer_bench — a librdkafka producer that sends as fast as it can and
 * prints one machine-readable RESULT line.
 *
 * Build (Debian librdkafka-dev 2.0.2):
 *   cc -O2 -o rdkafka_producer_bench bench/rdkafka_producer_bench.c -lrdkafka
 *
 * Examples:
 *   rdkafka_producer_bench -b mock:1 -t bench -s 100 -d 5
 *   rdkafka_producer_bench -b 127.0.0.1:9092 -t bench -s 1024 -n 2000000
 *   rdkafka_producer_bench -b 127.0.0.1:9092 -t big -s 65536 -d 5 --large
 *
 * Output (stdout, one line):
 *   RESULT records=N bytes=N seconds=S msgs_per_s=R mb_per_s=R failed=N client_cpu_s=S ...
 * where bytes counts record values (payload) delivered and MB = 10^6 bytes.
 * Exit status: 0 when every record was delivered, 1 when any delivery failed or a
 * fatal client error happened, 2 for bad arguments or setup errors.
 *
 * The timer starts after one warm-up record has been delivered (metadata fetched,
 * topic created, producer id acquired) and stops when the last delivery report of
 * the measured records has been served.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "bench_util.h"
#include <librdkafka/rdkafka_mock.h>

static volatile sig_atomic_t g_stop = 0;
static void on_signal(int sig) { (void)sig; g_stop = 1; }

/* Delivery accounting; only touched from the thread calling rd_kafka_poll(). */
static struct {
    int measuring;
    uint64_t delivered;
    uint64_t delivered_bytes;
    uint64_t failed;
    rd_kafka_resp_err_t first_err;
    int warmup_done;
    int warmup_ok;
    int fatal;
} g;

static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    (void)opaque;
    if (m->_private == (void *)1) { /* warm-up record */
        g.warmup_done = 1;
        g.warmup_ok = (m->err == RD_KAFKA_RESP_ERR_NO_ERROR);
        if (m->err)
            fprintf(stderr, "warm-up delivery failed: %s\n", rd_kafka_err2str(m->err));
        return;
    }
    if (m->err) {
        if (g.failed == 0) {
            g.first_err = m->err;
            fprintf(stderr, "delivery failed: %s\n", rd_kafka_err2str(m->err));
        }
        g.failed++;
    } else {
        g.delivered++;
        g.delivered_bytes += m->len;
    }
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque) {
    (void)opaque;
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char buf[512];
        rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk, buf, sizeof(buf));
        fprintf(stderr, "FATAL client error: %s: %s\n", rd_kafka_err2name(orig), buf);
        g.fatal = 1;
        g_stop = 1;
        return;
    }
    fprintf(stderr, "client error: %s: %s\n", rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

static void usage(const char *argv0) {
    fprintf(stderr,
        "usage: %s -b BOOTSTRAP|mock:N -t TOPIC [options]\n"
        "  -b, --bootstrap S       bootstrap.servers, or mock:N for librdkafka's mock cluster\n"
        "  -t, --topic T           topic (default: bench)\n"
        "  -s, --size N            record value size in bytes (default: 100)\n"
        "  -n, --count N           records to send (default: 2000000 unless -d is given)\n"
        "  -d, --duration S        send for S seconds (with -n, stop at whichever comes first)\n"
        "  -a, --acks A            acks: all|-1|0|1 (default: all)\n"
        "  -l, --linger MS         linger.ms (default: 5)\n"
        "      --batch-size N      batch.size in bytes\n"
        "      --batch-num N       batch.num.messages\n"
        "      --large             large-batch preset: batch.size=1MiB, batch.num.messages=1000000,\n"
        "                          linger.ms=50, message.max.bytes=16MiB (explicit options win)\n"
        "  -z, --compression C     none|gzip|snappy|lz4|zstd (default: none)\n"
        "  -i, --idempotence B     enable.idempotence true|false (default: true)\n"
        "  -p, --partitions N      mock only: create the topic with N partitions (default: 1;\n"
        "                          0 = let the mock auto-create it)\n"
        "  -k, --key-size N        key bytes per record (default: 0 = no key)\n"
        "  -B, --produce-batch N   enqueue N records per rd_kafka_produce_batch() call into one\n"
        "                          partition (round-robin over the topic's partitions per call);\n"
        "                          0 = one rd_kafka_produce() per record, partitioner picks (default: 0)\n"
        "  -X key=value            any other librdkafka property (repeatable)\n"
        "  -q, --quiet             no progress on stderr\n",
        argv0);
}

int main(int argc, char **argv) {
    const char *bootstrap = NULL, *topic = "bench", *acks = "all", *compression = "none";
    const char *idempotence = "true";
    long size = 100, key_size = 0, partitions = 1, pbatch = 0;
    long long count = -1;
    double duration = 0;
    const char *linger = NULL, *batch_size = NULL, *batch_num = NULL;
    int large = 0, quiet = 0;
    const char *extra[64];
    int n_extra = 0;

    static const struct option opts[] = {
        {"bootstrap", required_argument, 0, 'b'},
        {"topic", required_argument, 0, 't'},
        {"size", required_argument, 0, 's'},
        {"count", required_argument, 0, 'n'},
        {"duration", required_argument, 0, 'd'},
        {"acks", required_argument, 0, 'a'},
        {"linger", required_argument, 0, 'l'},
        {"batch-size", required_argument, 0, 1001},
        {"batch-num", required_argument, 0, 1002},
        {"large", no_argument, 0, 1003},
        {"compression", required_argument, 0, 'z'},
        {"idempotence", required_argument, 0, 'i'},
        {"partitions", required_argument, 0, 'p'},
        {"key-size", required_argument, 0, 'k'},
        {"produce-batch", required_argument, 0, 'B'},
        {"quiet", no_argument, 0, 'q'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "b:t:s:n:d:a:l:z:i:p:k:B:X:qh", opts, NULL)) != -1) {
        switch (c) {
        case 'b': bootstrap = optarg; break;
        case 't': topic = optarg; break;
        case 's': size = atol(optarg); break;
        case 'n': count = atoll(optarg); break;
        case 'd': duration = atof(optarg); break;
        case 'a': acks = optarg; break;
        case 'l': linger = optarg; break;
        case 1001: batch_size = optarg; break;
        case 1002: batch_num = optarg; break;
        case 1003: large = 1; break;
        case 'z': compression = optarg; break;
        case 'i': idempotence = optarg; break;
        case 'p': partitions = atol(optarg); break;
        case 'k': key_size = atol(optarg); break;
        case 'X':
            if (n_extra >= 64 || !strchr(optarg, '=')) { usage(argv[0]); return 2; }
            extra[n_extra++] = optarg;
            break;
        case 'B': pbatch = atol(optarg); break;
        case 'q': quiet = 1; break;
        case 'h': usage(argv[0]); return 0;
        default: usage(argv[0]); return 2;
        }
    }
    if (!bootstrap || size < 0 || key_size < 0 || pbatch < 0) { usage(argv[0]); return 2; }
    if (count < 0 && duration <= 0) count = 2000000;
    if (count < 0) count = INT64_MAX;
    if (!strcmp(acks, "all")) acks = "-1";

    int mock = 0;
    if (!strncmp(bootstrap, "mock:", 5)) mock = atoi(bootstrap + 5);
    if (!strncmp(bootstrap, "mock:", 5) && mock < 1) { usage(argv[0]); return 2; }

    /* Large-batch preset; explicit options override it. */
    if (!linger) linger = large ? "50" : "5";
    if (large && !batch_size) batch_size = "1048576";
    if (large && !batch_num) batch_num = "1000000";

    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char buf[64];
    if (mock) {
        snprintf(buf, sizeof(buf), "%d", mock);
        if (set_conf(conf, "test.mock.num.brokers", buf)) return 2;
    } else if (set_conf(conf, "bootstrap.servers", bootstrap)) return 2;
    if (set_conf(conf, "acks", acks) || set_conf(conf, "linger.ms", linger) ||
        set_conf(conf, "compression.codec", compression) ||
        set_conf(conf, "enable.idempotence", idempotence) ||
        /* Room for ~0.3 s of records at mock speed, far more than the in-flight
         * requests hold; small enough that the final drain stays short. */
        set_conf(conf, "queue.buffering.max.messages", "1000000") ||
        set_conf(conf, "queue.buffering.max.kbytes", "131072"))
        return 2;
    if (batch_size && set_conf(conf, "batch.size", batch_size)) return 2;
    if (batch_num && set_conf(conf, "batch.num.messages", batch_num)) return 2;
    if (large && set_conf(conf, "message.max.bytes", "16777216")) return 2;
    for (int i = 0; i < n_extra; i++) {
        char kv[1024];
        snprintf(kv, sizeof(kv), "%s", extra[i]);
        char *eq = strchr(kv, '=');
        *eq = 0;
        if (set_conf(conf, kv, eq + 1)) return 2;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, dr_msg_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);

    char errstr[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!rk) { fprintf(stderr, "rd_kafka_new: %s\n", errstr); return 2; }

    if (mock && partitions > 0) {
        rd_kafka_mock_cluster_t *mc = rd_kafka_handle_mock_cluster(rk);
        rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(mc, topic, (int)partitions, 1);
        if (e) { fprintf(stderr, "mock topic create: %s\n", rd_kafka_err2str(e)); return 2; }
    }

    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    if (!rkt) { fprintf(stderr, "topic_new: %s\n", rd_kafka_err2str(rd_kafka_last_error())); return 2; }

    /* One preallocated payload (and key) shared by all records: produced without copy. */
    char *payload = malloc(size > 0 ? (size_t)size : 1);
    char *key = key_size > 0 ? malloc((size_t)key_size) : NULL;
    for (long i = 0; i < size; i++) payload[i] = (char)('a' + i % 26);
    for (long i = 0; i < key_size; i++) key[i] = (char)('A' + i % 26);

    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);

    /* Warm-up: one record, delivered, before the clock starts. */
    if (rd_kafka_produce(rkt, RD_KAFKA_PARTITION_UA, 0, payload, (size_t)size, key,
                         (size_t)key_size, (void *)1) == -1) {
        fprintf(stderr, "warm-up produce: %s\n", rd_kafka_err2str(rd_kafka_last_error()));
        return 2;
    }
    double wu_deadline = now_s() + 30;
    while (!g.warmup_done && !g_stop && now_s() < wu_deadline) rd_kafka_poll(rk, 100);
    if (!g.warmup_ok) {
        fprintf(stderr, "warm-up record not delivered (broker reachable? topic creatable?)\n");
        rd_kafka_destroy(rk);
        return 1;
    }

    /* For the batch API: the topic's partition count, from metadata. */
    int npart = 1;
    rd_kafka_message_t *msgs = NULL;
    if (pbatch > 0) {
        const struct rd_kafka_metadata *md = NULL;
        if (rd_kafka_metadata(rk, 0, rkt, &md, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR && md) {
            if (md->topic_cnt == 1 && md->topics[0].partition_cnt > 0)
                npart = md->topics[0].partition_cnt;
            rd_kafka_metadata_destroy(md);
        }
        msgs = calloc((size_t)pbatch, sizeof(*msgs));
    }

    double cpu0 = cpu_s();
    double t0 = now_s();
    double end_at = duration > 0 ? t0 + duration : 0;
    double next_report = t0 + 1;
    long long sent = 0;
    uint64_t queue_full = 0;
    long long calls = 0;
    while (pbatch > 0 && sent < count && !g_stop) {
        int n = (int)(count - sent < pbatch ? count - sent : pbatch);
        for (int i = 0; i < n; i++) {
            msgs[i].payload = payload;
            msgs[i].len = (size_t)size;
            msgs[i].key = key;
            msgs[i].key_len = (size_t)key_size;
            msgs[i]._private = NULL;
            msgs[i].err = 0;
        }
        int ok = rd_kafka_produce_batch(rkt, (int32_t)(calls++ % npart), 0, msgs, n);
        sent += ok;
        if (ok < n) {
            rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR__QUEUE_FULL;
            for (int i = 0; i < n; i++)
                if (msgs[i].err && msgs[i].err != RD_KAFKA_RESP_ERR__QUEUE_FULL) e = msgs[i].err;
            if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                fprintf(stderr, "produce_batch: %s\n", rd_kafka_err2str(e));
                g.failed += (uint64_t)(n - ok);
                break;
            }
            queue_full++;
            rd_kafka_poll(rk, 1);
        } else {
            rd_kafka_poll(rk, 0);
        }
        double t = now_s();
        if (end_at > 0 && t >= end_at) break;
        if (!quiet && t >= next_report) {
            fprintf(stderr, "  %.0fs: sent %lld, delivered %" PRIu64 ", in flight %d\n", t - t0,
                    sent, g.delivered, rd_kafka_outq_len(rk));
            next_report += 1;
        }
    }
    while (pbatch == 0 && sent < count && !g_stop) {
        if (rd_kafka_produce(rkt, RD_KAFKA_PARTITION_UA, 0 /* no copy, no free */, payload,
                             (size_t)size, key, (size_t)key_size, NULL) == -1) {
            rd_kafka_resp_err_t e = rd_kafka_last_error();
            if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                queue_full++;
                rd_kafka_poll(rk, 1); /* serve delivery reports, make room */
                continue;
            }
            fprintf(stderr, "produce: %s\n", rd_kafka_err2str(e));
            g.failed++;
            break;
        }
        sent++;
        if ((sent & 1023) == 0) {
            rd_kafka_poll(rk, 0);
            if (end_at > 0 || !quiet) {
                double t = now_s();
                if (end_at > 0 && t >= end_at) break;
                if (!quiet && t >= next_report) {
                    fprintf(stderr, "  %.0fs: sent %lld, delivered %" PRIu64 ", in flight %d\n",
                            t - t0, sent, g.delivered, rd_kafka_outq_len(rk));
                    next_report += 1;
                }
            }
        }
    }
    double t_sent = now_s();

    /* Wait for every delivery report (bounded). */
    double flush_deadline = now_s() + 120;
    while (rd_kafka_outq_len(rk) > 0 && now_s() < flush_deadline && !g.fatal) {
        rd_kafka_flush(rk, 1000);
    }
    rd_kafka_poll(rk, 0);
    double t1 = now_s();
    double cpu1 = cpu_s();

    uint64_t accounted = g.delivered + g.failed;
    if ((uint64_t)sent > accounted) {
        fprintf(stderr, "%" PRIu64 " records without a delivery report after the flush deadline\n",
                (uint64_t)sent - accounted);
        g.failed += (uint64_t)sent - accounted;
    }

    double secs = t1 - t0;
    fprintf(stdout,
            "RESULT records=%" PRIu64 " bytes=%" PRIu64 " seconds=%.3f msgs_per_s=%.0f "
            "mb_per_s=%.1f failed=%" PRIu64 " client_cpu_s=%.3f send_seconds=%.3f "
            "queue_full=%" PRIu64 " size=%ld acks=%s linger_ms=%s batch_size=%s "
            "compression=%s idempotence=%s produce_batch=%ld\n",
            g.delivered, g.delivered_bytes, secs, secs > 0 ? g.delivered / secs : 0,
            secs > 0 ? g.delivered_bytes / secs / 1e6 : 0, g.failed, cpu1 - cpu0, t_sent - t0,
            queue_full, size, !strcmp(acks, "-1") ? "all" : acks, linger,
            batch_size ? batch_size : "default", compression, idempotence, pbatch);
    fflush(stdout);

    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    free(payload);
    free(key);
    free(msgs);
    return (g.failed > 0 || g.fatal) ? 1 : 0;
}
