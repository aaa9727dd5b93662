/*
 * zkbench's workloads run by the ZooKeeper C client (libzookeeper_mt), printing the same
 * JSON line as examples/zkbench. scripts/bench.sh builds and runs it beside the Rust
 * clients:
 *
 *   gcc -O2 -o zkbench-c examples/zkbench/peers/zkbench.c -lzookeeper_mt -lpthread
 *   zkbench-c --connect 127.0.0.1:2181 --workload get_pipe --n 100000 --inflight 1000
 *
 * Sequential ops use the synchronous API; pipelined ones the asynchronous one with at most
 * --inflight outstanding (a counter under a mutex that completions decrement). Latencies are
 * issue -> completion callback. CPU and peak RSS are the whole process's (getrusage), so the
 * client's IO and completion threads count, as a Rust client's runtime threads do.
 */
/* The synchronous API of zookeeper.h exists only in the threaded library. */
#ifndef THREADED
#define THREADED
#endif
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <zookeeper/zookeeper.h>

#define WARM_UP_OPS 200
#define SESSION_TIMEOUT_MS 10000

static const char *connect_to;
static const char *workload;
static long n_ops;
static long inflight = 1000;
static long size = 100;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static long outstanding;
static int failed_rc; /* first failed completion's rc, 0 while all went well */
static uint64_t *issued_ns;
static uint64_t *latency_ns;
static long latencies;

static void die(const char *what, int rc) {
    fprintf(stderr, "zkbench-c: %s failed: %s (%d)\n", what, zerror(rc), rc);
    exit(1);
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- sessions ------------------------------------------------------------------------ */

struct session {
    zhandle_t *zh;
    int connected;
    int fired; /* data watch fired (watch_fanout) */
    int fired_type;
};

static void session_watcher(zhandle_t *zh, int type, int state, const char *path, void *ctx) {
    (void)zh;
    (void)path;
    struct session *s = ctx;
    pthread_mutex_lock(&lock);
    if (type == ZOO_SESSION_EVENT && state == ZOO_CONNECTED_STATE) {
        s->connected = 1;
    } else if (type != ZOO_SESSION_EVENT) {
        s->fired = 1;
        s->fired_type = type;
    }
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
}

static void open_session(struct session *s) {
    memset(s, 0, sizeof *s);
    s->zh = zookeeper_init(connect_to, session_watcher, SESSION_TIMEOUT_MS, NULL, s, 0);
    if (!s->zh) {
        die("zookeeper_init", errno);
    }
    pthread_mutex_lock(&lock);
    while (!s->connected) {
        pthread_cond_wait(&cond, &lock);
    }
    pthread_mutex_unlock(&lock);
}

static void close_session(struct session *s) {
    int rc = zookeeper_close(s->zh);
    if (rc != ZOK) {
        die("zookeeper_close", rc);
    }
}

/* ---- measuring ----------------------------------------------------------------------- */

struct probe {
    struct rusage usage;
    uint64_t started;
};

static void probe_start(struct probe *p) {
    getrusage(RUSAGE_SELF, &p->usage);
    p->started = now_ns();
}

static double tv_secs(struct timeval tv) { return (double)tv.tv_sec + (double)tv.tv_usec / 1e6; }

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile in microseconds, or -1 when there are no samples. */
static double percentile_us(double p) {
    if (latencies == 0) {
        return -1;
    }
    long rank = (long)(p * (double)latencies + 0.999999);
    if (rank < 1) rank = 1;
    if (rank > latencies) rank = latencies;
    return (double)latency_ns[rank - 1] / 1000.0;
}

static void print_num(const char *key, double v) {
    if (v < 0) {
        printf(",\"%s\":null", key);
    } else {
        printf(",\"%s\":%.1f", key, v);
    }
}

static void probe_stop(struct probe *p, long ops) {
    uint64_t wall = now_ns() - p->started;
    struct rusage end;
    getrusage(RUSAGE_SELF, &end);
    qsort(latency_ns, (size_t)latencies, sizeof *latency_ns, cmp_u64);
    double secs = (double)wall / 1e9;
    printf("{\"client\":\"c\",\"workload\":\"%s\",\"n\":%ld,\"secs\":%.6f,\"ops_per_sec\":%.1f",
           workload, n_ops, secs, (double)ops / secs);
    print_num("p50_us", percentile_us(0.50));
    print_num("p99_us", percentile_us(0.99));
    printf(",\"cpu_user_s\":%.6f,\"cpu_sys_s\":%.6f,\"max_rss_kb\":%ld,\"runtime\":\"native\"}\n",
           tv_secs(end.ru_utime) - tv_secs(p->usage.ru_utime),
           tv_secs(end.ru_stime) - tv_secs(p->usage.ru_stime), end.ru_maxrss);
}

static void record(uint64_t issued) { latency_ns[latencies++] = now_ns() - issued; }

/* ---- pipelined ----------------------------------------------------------------------- */

/* A completion: note the latency of request `data` (its index), free a slot. */
static void completed(int rc, const void *data) {
    long i = (long)(intptr_t)data;
    uint64_t done = now_ns();
    pthread_mutex_lock(&lock);
    if (rc != ZOK && failed_rc == 0) {
        failed_rc = rc;
    }
    if (i >= 0) {
        latency_ns[latencies++] = done - issued_ns[i];
    }
    outstanding--;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
}

static void data_done(int rc, const char *value, int len, const struct Stat *stat, const void *data) {
    (void)value;
    (void)len;
    (void)stat;
    completed(rc, data);
}

static void stat_done(int rc, const struct Stat *stat, const void *data) {
    (void)stat;
    completed(rc, data);
}

/* Waits until fewer than `limit` requests are outstanding, then counts one more. */
static void take_slot(long limit) {
    pthread_mutex_lock(&lock);
    while (outstanding >= limit) {
        pthread_cond_wait(&cond, &lock);
    }
    if (failed_rc != 0) {
        die("a pipelined request", failed_rc);
    }
    outstanding++;
    pthread_mutex_unlock(&lock);
}

/* `n` gets (set_data when `data`) on `node`, at most `inflight` outstanding; `timed`
 * requests record their latencies. */
static void pipelined(zhandle_t *zh, const char *node, const char *data, long n, int timed) {
    for (long i = 0; i < n; i++) {
        take_slot(inflight);
        void *tag = (void *)(intptr_t)(timed ? i : -1);
        if (timed) {
            issued_ns[i] = now_ns();
        }
        int rc = data ? zoo_aset(zh, node, data, (int)size, -1, stat_done, tag)
                      : zoo_aget(zh, node, 0, data_done, tag);
        if (rc != ZOK) {
            die("issuing a request", rc);
        }
    }
    take_slot(1); /* all done */
    pthread_mutex_lock(&lock);
    outstanding--;
    pthread_mutex_unlock(&lock);
}

/* ---- workloads ----------------------------------------------------------------------- */

static void create_node(zhandle_t *zh, const char *path, const char *data, int len) {
    int rc = zoo_create(zh, path, data, len, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, NULL, 0);
    if (rc != ZOK) {
        die("create", rc);
    }
}

static void get_node(zhandle_t *zh, const char *path) {
    char buf[4096];
    int len = sizeof buf;
    int rc = zoo_get(zh, path, 0, buf, &len, NULL);
    if (rc != ZOK) {
        die("get", rc);
    }
    if (len != size) {
        fprintf(stderr, "zkbench-c: get returned %d bytes, expected %ld\n", len, size);
        exit(1);
    }
}

/* Deletes `path` and everything below it. */
static void remove_tree(zhandle_t *zh, const char *path) {
    struct String_vector children;
    int rc = zoo_get_children(zh, path, 0, &children);
    if (rc != ZOK) {
        die("get_children", rc);
    }
    char child[1024];
    for (int i = 0; i < children.count; i++) {
        snprintf(child, sizeof child, "%s/%s", path, children.data[i]);
        remove_tree(zh, child);
    }
    deallocate_String_vector(&children);
    rc = zoo_delete(zh, path, -1);
    if (rc != ZOK) {
        die("delete", rc);
    }
}

static void watch_fanout(struct session *watcher, const char *node, const char *data) {
    struct session changer;
    open_session(&changer);
    char buf[4096];
    int len = sizeof buf;
    struct probe probe;
    int rc = zoo_wget(watcher->zh, node, session_watcher, watcher, buf, &len, NULL);
    if (rc != ZOK) {
        die("wget", rc);
    }
    probe_start(&probe);
    for (long i = 0; i < n_ops; i++) {
        uint64_t issued = now_ns();
        take_slot(1);
        rc = zoo_aset(changer.zh, node, data, (int)size, -1, stat_done, (void *)(intptr_t)-1);
        if (rc != ZOK) {
            die("aset", rc);
        }
        pthread_mutex_lock(&lock);
        while (!watcher->fired) {
            pthread_cond_wait(&cond, &lock);
        }
        if (watcher->fired_type != ZOO_CHANGED_EVENT) {
            fprintf(stderr, "zkbench-c: the watch fired type %d, not a data change\n",
                    watcher->fired_type);
            exit(1);
        }
        watcher->fired = 0;
        latency_ns[latencies++] = now_ns() - issued;
        while (outstanding > 0) {
            pthread_cond_wait(&cond, &lock);
        }
        pthread_mutex_unlock(&lock);
        len = sizeof buf;
        rc = zoo_wget(watcher->zh, node, session_watcher, watcher, buf, &len, NULL);
        if (rc != ZOK) {
            die("wget", rc);
        }
    }
    probe_stop(&probe, n_ops);
    close_session(&changer);
}

static void run(void) {
    struct probe probe;
    struct session main_session;
    if (strcmp(workload, "connect") == 0) {
        probe_start(&probe);
        for (long i = 0; i < n_ops; i++) {
            uint64_t opened = now_ns();
            struct session s;
            open_session(&s);
            record(opened);
            close_session(&s);
        }
        probe_stop(&probe, n_ops);
        return;
    }
    open_session(&main_session);
    zhandle_t *zh = main_session.zh;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    char root[128], node[160];
    snprintf(root, sizeof root, "/zkbench-c-%d-%ld%09ld", (int)getpid(), (long)ts.tv_sec, ts.tv_nsec);
    snprintf(node, sizeof node, "%s/node", root);
    char *data = malloc((size_t)size + 1);
    memset(data, 'z', (size_t)size);
    create_node(zh, root, "zkbench", 7);
    if (strcmp(workload, "create_seq") != 0) {
        create_node(zh, node, data, (int)size);
    }
    long warm = n_ops < WARM_UP_OPS ? n_ops : WARM_UP_OPS;
    if (strcmp(workload, "get_seq") == 0) {
        for (long i = 0; i < warm; i++) get_node(zh, node);
        probe_start(&probe);
        for (long i = 0; i < n_ops; i++) {
            uint64_t issued = now_ns();
            get_node(zh, node);
            record(issued);
        }
        probe_stop(&probe, n_ops);
    } else if (strcmp(workload, "get_pipe") == 0 || strcmp(workload, "set_pipe") == 0) {
        const char *payload = workload[0] == 's' ? data : NULL;
        pipelined(zh, node, payload, warm, 0);
        probe_start(&probe);
        pipelined(zh, node, payload, n_ops, 1);
        probe_stop(&probe, n_ops);
    } else if (strcmp(workload, "create_seq") == 0) {
        /* Names are made up front, as zkbench does. */
        char (*names)[192] = malloc((size_t)n_ops * sizeof *names);
        for (long i = 0; i < n_ops; i++) snprintf(names[i], sizeof names[i], "%s/n%010ld", root, i);
        probe_start(&probe);
        for (long i = 0; i < n_ops; i++) {
            uint64_t issued = now_ns();
            create_node(zh, names[i], data, (int)size);
            record(issued);
        }
        for (long i = 0; i < n_ops; i++) {
            uint64_t issued = now_ns();
            int rc = zoo_delete(zh, names[i], -1);
            if (rc != ZOK) die("delete", rc);
            record(issued);
        }
        probe_stop(&probe, 2 * n_ops);
        free(names);
    } else if (strcmp(workload, "watch_fanout") == 0) {
        watch_fanout(&main_session, node, data);
    } else {
        fprintf(stderr, "zkbench-c: unknown workload '%s'\n", workload);
        exit(2);
    }
    remove_tree(zh, root);
    close_session(&main_session);
    free(data);
}

int main(int argc, char **argv) {
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *flag = argv[i], *value = argv[i + 1];
        if (strcmp(flag, "--connect") == 0) connect_to = value;
        else if (strcmp(flag, "--workload") == 0) workload = value;
        else if (strcmp(flag, "--n") == 0) n_ops = atol(value);
        else if (strcmp(flag, "--inflight") == 0) inflight = atol(value);
        else if (strcmp(flag, "--size") == 0) size = atol(value);
        else {
            fprintf(stderr, "zkbench-c: unknown option %s\n", flag);
            return 2;
        }
    }
    if (!connect_to || !workload || n_ops < 1 || inflight < 1 || size < 0 || size > 4000) {
        fprintf(stderr, "usage: zkbench-c --connect HOST:PORT --workload W --n N [--inflight K] [--size B]\n");
        return 2;
    }
    zoo_set_debug_level(ZOO_LOG_LEVEL_ERROR);
    issued_ns = calloc((size_t)n_ops, sizeof *issued_ns);
    latency_ns = calloc(2 * (size_t)n_ops, sizeof *latency_ns);
    if (!issued_ns || !latency_ns) {
        fprintf(stderr, "zkbench-c: out of memory\n");
        return 1;
    }
    run();
    return 0;
}
