/*
 * brook_mock_cluster: librdkafka's in-memory mock cluster (rdkafka_mock.h, librdkafka 2.0.2),
 * driven line by line from standard input, for Brook's fault-injection tests.
 *
 *   brook_mock_cluster [BROKERS] [TOPIC:PARTITIONS ...]
 *
 * Prints the bootstrap servers as its first stdout line, then reads one command per line and
 * answers each with exactly one line, "ok ..." or "error ...", so a test can synchronise:
 *
 *   topic NAME PARTITIONS             create a topic (replication factor min(3, BROKERS))
 *   down ID | up ID                   broker ID refuses / accepts connections (-1: all brokers)
 *   leader TOPIC PARTITION ID         move a partition's leader to broker ID
 *   errors APIKEY ERR [ERR ...]       the next requests of APIKEY fail with ERR, one each
 *   broker_errors ID APIKEY ERR RTT   the next request of APIKEY on broker ID fails with ERR after RTT ms
 *   clear APIKEY                      drop the pending errors of APIKEY
 *   rtt ID MS                         add MS of round-trip time to broker ID (-1: all)
 *   coordinator group|transaction KEY ID   make broker ID the coordinator of KEY
 *   quit                              destroy the cluster and exit (EOF does the same)
 *
 * Build: gcc -O1 -o brook_mock_cluster brook_mock_cluster.c -lrdkafka
 */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ARGS 64

static int broker_cnt = 3;

static int parse_int(const char *s, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end) return 0;
    *out = v;
    return 1;
}

static void reply(const char *status, const char *what, rd_kafka_resp_err_t err) {
    if (err)
        printf("error %s: %s\n", what, rd_kafka_err2str(err));
    else
        printf("%s %s\n", status, what);
    fflush(stdout);
}

static rd_kafka_resp_err_t create_topic(rd_kafka_mock_cluster_t *mc, const char *name, long partitions) {
    int rf = broker_cnt < 3 ? broker_cnt : 3;
    return rd_kafka_mock_topic_create(mc, name, (int)partitions, rf);
}

/* Applies one command; returns 0 to stop. */
static int apply(rd_kafka_mock_cluster_t *mc, char *line) {
    char *argv[MAX_ARGS];
    int argc = 0;
    for (char *tok = strtok(line, " \t\r\n"); tok && argc < MAX_ARGS; tok = strtok(NULL, " \t\r\n"))
        argv[argc++] = tok;
    if (argc == 0) {
        reply("ok", "noop", 0);
        return 1;
    }
    const char *cmd = argv[0];
    long a, b, c, d;

    if (!strcmp(cmd, "quit")) {
        reply("ok", "quit", 0);
        return 0;
    }
    if (!strcmp(cmd, "topic") && argc == 3 && parse_int(argv[2], &a)) {
        reply("ok", "topic", create_topic(mc, argv[1], a));
    } else if (!strcmp(cmd, "down") && argc == 2 && parse_int(argv[1], &a)) {
        reply("ok", "down", rd_kafka_mock_broker_set_down(mc, (int32_t)a));
    } else if (!strcmp(cmd, "up") && argc == 2 && parse_int(argv[1], &a)) {
        reply("ok", "up", rd_kafka_mock_broker_set_up(mc, (int32_t)a));
    } else if (!strcmp(cmd, "leader") && argc == 4 && parse_int(argv[2], &a) && parse_int(argv[3], &b)) {
        reply("ok", "leader", rd_kafka_mock_partition_set_leader(mc, argv[1], (int32_t)a, (int32_t)b));
    } else if (!strcmp(cmd, "errors") && argc >= 3 && parse_int(argv[1], &a)) {
        rd_kafka_resp_err_t errs[MAX_ARGS];
        size_t n = 0;
        for (int i = 2; i < argc; i++) {
            if (!parse_int(argv[i], &b)) {
                printf("error errors: bad error code %s\n", argv[i]);
                fflush(stdout);
                return 1;
            }
            errs[n++] = (rd_kafka_resp_err_t)b;
        }
        rd_kafka_mock_push_request_errors_array(mc, (int16_t)a, n, errs);
        reply("ok", "errors", 0);
    } else if (!strcmp(cmd, "broker_errors") && argc == 5 && parse_int(argv[1], &a) && parse_int(argv[2], &b) &&
               parse_int(argv[3], &c) && parse_int(argv[4], &d)) {
        reply("ok", "broker_errors",
              rd_kafka_mock_broker_push_request_error_rtts(mc, (int32_t)a, (int16_t)b, 1, (rd_kafka_resp_err_t)c, (int)d));
    } else if (!strcmp(cmd, "clear") && argc == 2 && parse_int(argv[1], &a)) {
        rd_kafka_mock_clear_request_errors(mc, (int16_t)a);
        reply("ok", "clear", 0);
    } else if (!strcmp(cmd, "rtt") && argc == 3 && parse_int(argv[1], &a) && parse_int(argv[2], &b)) {
        reply("ok", "rtt", rd_kafka_mock_broker_set_rtt(mc, (int32_t)a, (int)b));
    } else if (!strcmp(cmd, "coordinator") && argc == 4 && parse_int(argv[3], &a)) {
        reply("ok", "coordinator", rd_kafka_mock_coordinator_set(mc, argv[1], argv[2], (int32_t)a));
    } else {
        printf("error unknown or malformed command: %s\n", cmd);
        fflush(stdout);
    }
    return 1;
}

int main(int argc, char **argv) {
    char errstr[512];
    int first_topic = 1;
    long n;
    if (argc > 1 && parse_int(argv[1], &n)) {
        if (n < 1 || n > 64) {
            fprintf(stderr, "broker count must be 1..64\n");
            return 2;
        }
        broker_cnt = (int)n;
        first_topic = 2;
    }

    /* The mock cluster needs a client instance for its bookkeeping; this one sends nothing. */
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "conf: %s\n", errstr);
        return 1;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!rk) {
        fprintf(stderr, "rd_kafka_new: %s\n", errstr);
        return 1;
    }
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, broker_cnt);
    if (!mc) {
        fprintf(stderr, "rd_kafka_mock_cluster_new failed\n");
        rd_kafka_destroy(rk);
        return 1;
    }

    for (int i = first_topic; i < argc; i++) {
        char *colon = strrchr(argv[i], ':');
        long parts = 1;
        if (colon) {
            *colon = '\0';
            if (!parse_int(colon + 1, &parts)) {
                fprintf(stderr, "bad topic spec %s\n", argv[i]);
                return 2;
            }
        }
        rd_kafka_resp_err_t err = create_topic(mc, argv[i], parts);
        if (err) {
            fprintf(stderr, "topic %s: %s\n", argv[i], rd_kafka_err2str(err));
            return 1;
        }
    }

    printf("%s\n", rd_kafka_mock_cluster_bootstraps(mc));
    fflush(stdout);

    char line[4096];
    while (fgets(line, sizeof(line), stdin)) {
        if (!apply(mc, line)) break;
    }

    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(rk);
    return 0;
}
