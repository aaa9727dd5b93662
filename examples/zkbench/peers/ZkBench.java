// zkbench's workloads run by Apache Curator (the Debian jars), printing the same JSON line as
// examples/zkbench. scripts/bench.sh compiles it with javac and runs it beside the Rust
// clients:
//
//   javac -cp "$CP" -d out examples/zkbench/peers/ZkBench.java
//   java -cp "out:$CP" ZkBench --connect 127.0.0.1:2181 --workload get_pipe --n 100000
//
// Sequential ops are Curator's blocking calls; pipelined ones are background calls with at
// most --inflight outstanding (a semaphore their callbacks release). Latencies run from issue
// to the callback. CPU (utime/stime of /proc/self/stat) and peak RSS (VmHWM) cover the whole
// JVM: the client's threads, the JIT and the collector, as a Rust client's runtime counts.

import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Semaphore;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.api.BackgroundCallback;
import org.apache.curator.retry.RetryOneTime;
import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.WatchedEvent;
import org.apache.zookeeper.Watcher;

public final class ZkBench {
    static final int WARM_UP_OPS = 200;
    static final long CLOCK_TICKS_PER_SEC = 100; // USER_HZ on Linux

    static String connect;
    static String workload;
    static int n;
    static int inflight = 1000;
    static int size = 100;
    static long[] latencies;
    static int recorded;

    public static void main(String[] args) throws Exception {
        for (int i = 0; i + 1 < args.length; i += 2) {
            String value = args[i + 1];
            switch (args[i]) {
                case "--connect": connect = value; break;
                case "--workload": workload = value; break;
                case "--n": n = Integer.parseInt(value); break;
                case "--inflight": inflight = Integer.parseInt(value); break;
                case "--size": size = Integer.parseInt(value); break;
                default:
                    System.err.println("zkbench-curator: unknown option " + args[i]);
                    System.exit(2);
            }
        }
        if (connect == null || workload == null || n < 1 || inflight < 1 || size < 0) {
            System.err.println("usage: ZkBench --connect HOST:PORT --workload W --n N [--inflight K] [--size B]");
            System.exit(2);
        }
        latencies = new long[2 * n];
        run();
        System.exit(0);
    }

    static CuratorFramework open() throws Exception {
        CuratorFramework client = CuratorFrameworkFactory.builder()
            .connectString(connect)
            .sessionTimeoutMs(10_000)
            .connectionTimeoutMs(15_000)
            .retryPolicy(new RetryOneTime(100))
            .build();
        client.start();
        client.blockUntilConnected();
        return client;
    }

    /** CPU seconds (user, system) of this process. */
    static double[] cpu() throws Exception {
        String stat = new String(Files.readAllBytes(Paths.get("/proc/self/stat")));
        // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
        String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
        return new double[] {
            Long.parseLong(f[11]) / (double) CLOCK_TICKS_PER_SEC,
            Long.parseLong(f[12]) / (double) CLOCK_TICKS_PER_SEC,
        };
    }

    static long maxRssKb() throws Exception {
        for (String line : Files.readAllLines(Paths.get("/proc/self/status"))) {
            if (line.startsWith("VmHWM:")) {
                return Long.parseLong(line.replaceAll("[^0-9]", ""));
            }
        }
        return 0;
    }

    static double[] cpuAtStart;
    static long startedNs;

    static void start() throws Exception {
        recorded = 0;
        cpuAtStart = cpu();
        startedNs = System.nanoTime();
    }

    static String percentile(double p) {
        if (recorded == 0) {
            return "null";
        }
        int rank = Math.max(1, Math.min(recorded, (int) Math.ceil(p * recorded)));
        return String.format("%.1f", latencies[rank - 1] / 1000.0);
    }

    static void stop(long ops) throws Exception {
        double secs = (System.nanoTime() - startedNs) / 1e9;
        double[] cpu = cpu();
        Arrays.sort(latencies, 0, recorded);
        System.out.printf(
            "{\"client\":\"curator\",\"workload\":\"%s\",\"n\":%d,\"secs\":%.6f,\"ops_per_sec\":%.1f,"
                + "\"p50_us\":%s,\"p99_us\":%s,\"cpu_user_s\":%.6f,\"cpu_sys_s\":%.6f,"
                + "\"max_rss_kb\":%d,\"runtime\":\"jvm\"}%n",
            workload, n, secs, ops / secs, percentile(0.50), percentile(0.99),
            cpu[0] - cpuAtStart[0], cpu[1] - cpuAtStart[1], maxRssKb());
    }

    static synchronized void record(long issuedNs) {
        latencies[recorded++] = System.nanoTime() - issuedNs;
    }

    static void run() throws Exception {
        if (workload.equals("connect")) {
            start();
            for (int i = 0; i < n; i++) {
                long opened = System.nanoTime();
                CuratorFramework client = open();
                record(opened);
                client.close();
            }
            stop(n);
            return;
        }
        CuratorFramework client = open();
        String root = "/zkbench-curator-" + ProcessHandle.current().pid() + "-" + System.nanoTime();
        String node = root + "/node";
        byte[] data = new byte[size];
        Arrays.fill(data, (byte) 'z');
        client.create().withMode(CreateMode.PERSISTENT).forPath(root, "zkbench".getBytes());
        if (!workload.equals("create_seq")) {
            client.create().withMode(CreateMode.PERSISTENT).forPath(node, data);
        }
        int warm = Math.min(n, WARM_UP_OPS);
        switch (workload) {
            case "get_seq":
                for (int i = 0; i < warm; i++) {
                    client.getData().forPath(node);
                }
                start();
                for (int i = 0; i < n; i++) {
                    long issued = System.nanoTime();
                    byte[] got = client.getData().forPath(node);
                    record(issued);
                    if (got.length != size) {
                        throw new IllegalStateException("get returned " + got.length + " bytes");
                    }
                }
                stop(n);
                break;
            case "get_pipe":
            case "set_pipe": {
                boolean set = workload.equals("set_pipe");
                pipelined(client, node, set ? data : null, warm, false);
                start();
                pipelined(client, node, set ? data : null, n, true);
                stop(n);
                break;
            }
            case "create_seq": {
                String[] names = new String[n];
                for (int i = 0; i < n; i++) {
                    names[i] = String.format("%s/n%010d", root, i);
                }
                start();
                for (String name : names) {
                    long issued = System.nanoTime();
                    client.create().withMode(CreateMode.PERSISTENT).forPath(name, data);
                    record(issued);
                }
                for (String name : names) {
                    long issued = System.nanoTime();
                    client.delete().forPath(name);
                    record(issued);
                }
                stop(2L * n);
                break;
            }
            case "watch_fanout":
                watchFanout(client, node, data);
                break;
            default:
                System.err.println("zkbench-curator: unknown workload " + workload);
                System.exit(2);
        }
        removeTree(client, root);
        client.close();
    }

    /** `count` background gets (sets when `data` is given), at most `inflight` outstanding. */
    static void pipelined(CuratorFramework client, String node, byte[] data, int count, boolean timed)
            throws Exception {
        Semaphore slots = new Semaphore(inflight);
        AtomicReference<String> failure = new AtomicReference<>();
        for (int i = 0; i < count; i++) {
            slots.acquire();
            if (failure.get() != null) {
                throw new IllegalStateException(failure.get());
            }
            long issued = System.nanoTime();
            BackgroundCallback done = (c, event) -> {
                if (event.getResultCode() != 0) {
                    failure.compareAndSet(null, "a pipelined request failed: " + event.getResultCode());
                }
                if (timed) {
                    record(issued);
                }
                slots.release();
            };
            if (data == null) {
                client.getData().inBackground(done).forPath(node);
            } else {
                client.setData().inBackground(done).forPath(node, data);
            }
        }
        slots.acquire(inflight);
        if (failure.get() != null) {
            throw new IllegalStateException(failure.get());
        }
    }

    static void watchFanout(CuratorFramework watcher, String node, byte[] data) throws Exception {
        CuratorFramework changer = open();
        AtomicInteger firedType = new AtomicInteger();
        AtomicReference<CountDownLatch> fired = new AtomicReference<>(new CountDownLatch(1));
        Watcher watch = (WatchedEvent event) -> {
            firedType.set(event.getType().getIntValue());
            fired.get().countDown();
        };
        watcher.getData().usingWatcher(watch).forPath(node);
        start();
        for (int i = 0; i < n; i++) {
            long issued = System.nanoTime();
            CountDownLatch changed = new CountDownLatch(1);
            changer.setData().inBackground((c, event) -> changed.countDown()).forPath(node, data);
            fired.get().await();
            record(issued);
            if (firedType.get() != Watcher.Event.EventType.NodeDataChanged.getIntValue()) {
                throw new IllegalStateException("the watch fired type " + firedType.get());
            }
            changed.await();
            fired.set(new CountDownLatch(1));
            watcher.getData().usingWatcher(watch).forPath(node);
        }
        stop(n);
        changer.close();
    }

    static void removeTree(CuratorFramework client, String path) throws Exception {
        List<String> children = client.getChildren().forPath(path);
        for (String child : children) {
            removeTree(client, path + "/" + child);
        }
        client.delete().forPath(path);
    }
}
