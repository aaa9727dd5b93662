// Curator coordination recipes for recipes/tests/coordination_interop.rs, beside Rust ones on
// the same znodes: SharedCount, DistributedBarrier, DistributedDoubleBarrier, LeaderSelector.
//
// Usage: CuratorCoordPeer <log> <session ms> <who>=<connect> [<who>=<connect> ...]
//
// One Curator client per <who>=<connect> pair (the first one serves the count and barrier
// commands). Prints "ready" once every client is connected, then reads commands on standard
// input, one per line. Every line it prints starts with a word naming what it reports, so the
// test can tell replies from lines printed by background threads.
//
//   count <path> <seed>         start a SharedCount with a listener   -> "count-started"
//   count-inc <threads> <n>     each thread makes <n> successful trySetCount increments
//                               (re-reading after a lost race)       -> "incremented <failed tries>"
//   count-set <value>           setCount                               -> "count-set"
//   count-seen <value>          wait until the listener reported <value>
//                                                      -> "count-seen <value>" / "count-unseen <value>"
//   count-get                   read the node                         -> "count <value>"
//   barrier-set <path>          DistributedBarrier.setBarrier          -> "barrier-set"
//   barrier-remove <path>       DistributedBarrier.removeBarrier       -> "barrier-removed"
//   barrier-wait <path> <who>   a thread waits on the barrier    -> later "barrier-released <who>"
//   dbarrier-enter <path> <qty> <who>
//                               a new DistributedDoubleBarrier member enters in a thread of its
//                               own, logging "<who> enter enter" before and "<who> enter exit"
//                               after                            -> later "dbarrier-entered <who>"
//   dbarrier-leave <who>        that member leaves in a thread, logging "<who> leave enter/exit"
//                                                                -> later "dbarrier-left <who>"
//   select <path>               every client starts a LeaderSelector (id <who>, auto-requeue);
//                               a leader logs "<who> lead enter", prints "lead <who>", and holds
//                               leadership until released or interrupted (Curator interrupts it
//                               on SUSPENDED and LOST); then logs "<who> lead exit" and prints
//                               "unlead <who>"
//   release <who>               ends <who>'s current term
//   session <who>               -> "session <who> <id> <password hex>"
//   quit                        close everything, print "done", exit
//
// Log lines are "<who> <mode> <enter|exit> <wall nanos>", one append each. Exits non-zero when
// a background thread fails.

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardOpenOption;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.barriers.DistributedBarrier;
import org.apache.curator.framework.recipes.barriers.DistributedDoubleBarrier;
import org.apache.curator.framework.recipes.leader.LeaderSelector;
import org.apache.curator.framework.recipes.leader.LeaderSelectorListenerAdapter;
import org.apache.curator.framework.recipes.shared.SharedCount;
import org.apache.curator.framework.recipes.shared.SharedCountListener;
import org.apache.curator.framework.recipes.shared.SharedCountReader;
import org.apache.curator.framework.recipes.shared.VersionedValue;
import org.apache.curator.framework.state.ConnectionState;
import org.apache.curator.retry.RetryForever;
import org.apache.zookeeper.ZooKeeper;

public final class CuratorCoordPeer {
    private CuratorCoordPeer() {}

    private static final long WAIT_SECONDS = 60;
    private static final Object OUT = new Object();
    private static Path log;
    private static volatile boolean failed;

    private static long wallNanos() {
        Instant now = Instant.now();
        return now.getEpochSecond() * 1_000_000_000L + now.getNano();
    }

    private static void say(String line) {
        synchronized (OUT) {
            System.out.println(line);
            System.out.flush();
        }
    }

    private static void note(String who, String mode, String event) {
        String line = who + " " + mode + " " + event + " " + wallNanos() + "\n";
        try {
            Files.write(log, line.getBytes(StandardCharsets.UTF_8),
                    StandardOpenOption.CREATE, StandardOpenOption.WRITE, StandardOpenOption.APPEND);
        } catch (Exception e) {
            System.err.println("cannot write the log: " + e);
            failed = true;
        }
    }

    private interface Body {
        void run() throws Exception;
    }

    private static void background(String name, Body body) {
        Thread thread = new Thread(() -> {
            try {
                body.run();
            } catch (Throwable e) {
                System.err.println(name + " failed: " + e);
                failed = true;
            }
        }, name);
        thread.setDaemon(true);
        thread.start();
    }

    // SharedCount.
    private static SharedCount count;
    private static String countPath;
    private static final Set<Integer> SEEN = new HashSet<>();

    // Double barrier members by name.
    private static final Map<String, DistributedDoubleBarrier> MEMBERS = new LinkedHashMap<>();

    /** A LeaderSelector participant that leads until released or interrupted. */
    private static final class Leader extends LeaderSelectorListenerAdapter {
        private final String who;
        private final Semaphore release = new Semaphore(0);

        Leader(String who) {
            this.who = who;
        }

        @Override
        public void takeLeadership(CuratorFramework client) throws Exception {
            // A release sent for an earlier term must not end this one.
            release.drainPermits();
            note(who, "lead", "enter");
            say("lead " + who);
            try {
                release.acquire();
            } finally {
                note(who, "lead", "exit");
                say("unlead " + who);
            }
        }
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 3) {
            System.err.println("usage: CuratorCoordPeer <log> <session ms> <who>=<connect> ...");
            System.exit(2);
        }
        log = Paths.get(args[0]);
        int sessionMs = Integer.parseInt(args[1]);
        Map<String, CuratorFramework> clients = new LinkedHashMap<>();
        for (int i = 2; i < args.length; i++) {
            String[] pair = args[i].split("=", 2);
            CuratorFramework client = CuratorFrameworkFactory.newClient(
                    pair[1], sessionMs, 10_000, new RetryForever(50));
            client.start();
            clients.put(pair[0], client);
        }
        for (CuratorFramework client : clients.values()) {
            if (!client.blockUntilConnected(30, TimeUnit.SECONDS)) {
                System.err.println("not connected");
                System.exit(3);
            }
        }
        CuratorFramework main = clients.values().iterator().next();
        Map<String, Leader> leaders = new LinkedHashMap<>();
        List<LeaderSelector> selectors = new ArrayList<>();
        say("ready");

        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        while ((line = in.readLine()) != null) {
            String[] a = line.trim().split(" ");
            switch (a[0]) {
                case "count": {
                    countPath = a[1];
                    count = new SharedCount(main, countPath, Integer.parseInt(a[2]));
                    count.addListener(new SharedCountListener() {
                        @Override
                        public void countHasChanged(SharedCountReader reader, int value) {
                            synchronized (SEEN) {
                                SEEN.add(value);
                                SEEN.notifyAll();
                            }
                        }

                        @Override
                        public void stateChanged(CuratorFramework client, ConnectionState state) {}
                    });
                    count.start();
                    say("count-started");
                    break;
                }
                case "count-inc": {
                    int threads = Integer.parseInt(a[1]);
                    int n = Integer.parseInt(a[2]);
                    AtomicInteger lost = new AtomicInteger();
                    List<Thread> running = new ArrayList<>();
                    for (int t = 0; t < threads; t++) {
                        Thread thread = new Thread(() -> {
                            try {
                                for (int done = 0; done < n; ) {
                                    VersionedValue<Integer> seen = count.getVersionedValue();
                                    if (count.trySetCount(seen, seen.getValue() + 1)) {
                                        done++;
                                    } else {
                                        lost.incrementAndGet();
                                    }
                                }
                            } catch (Throwable e) {
                                System.err.println("count-inc failed: " + e);
                                failed = true;
                            }
                        });
                        thread.start();
                        running.add(thread);
                    }
                    for (Thread thread : running) {
                        thread.join();
                    }
                    say(failed ? "error count-inc" : "incremented " + lost.get());
                    break;
                }
                case "count-set":
                    count.setCount(Integer.parseInt(a[1]));
                    say("count-set");
                    break;
                case "count-seen": {
                    int wanted = Integer.parseInt(a[1]);
                    long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(WAIT_SECONDS);
                    boolean seen;
                    synchronized (SEEN) {
                        while (!(seen = SEEN.contains(wanted)) && System.nanoTime() < until) {
                            SEEN.wait(Math.max(1, TimeUnit.NANOSECONDS.toMillis(until - System.nanoTime())));
                        }
                    }
                    say((seen ? "count-seen " : "count-unseen ") + wanted);
                    break;
                }
                case "count-get": {
                    byte[] data = main.getData().forPath(countPath);
                    say("count " + java.nio.ByteBuffer.wrap(data).getInt());
                    break;
                }
                case "barrier-set":
                    new DistributedBarrier(main, a[1]).setBarrier();
                    say("barrier-set");
                    break;
                case "barrier-remove":
                    new DistributedBarrier(main, a[1]).removeBarrier();
                    say("barrier-removed");
                    break;
                case "barrier-wait": {
                    DistributedBarrier barrier = new DistributedBarrier(main, a[1]);
                    String who = a[2];
                    background(who, () -> {
                        if (!barrier.waitOnBarrier(WAIT_SECONDS, TimeUnit.SECONDS)) {
                            throw new IllegalStateException(who + " timed out on the barrier");
                        }
                        say("barrier-released " + who);
                    });
                    break;
                }
                case "dbarrier-enter": {
                    String who = a[3];
                    DistributedDoubleBarrier member =
                            new DistributedDoubleBarrier(main, a[1], Integer.parseInt(a[2]));
                    MEMBERS.put(who, member);
                    background(who, () -> {
                        note(who, "enter", "enter");
                        if (!member.enter(WAIT_SECONDS, TimeUnit.SECONDS)) {
                            throw new IllegalStateException(who + " timed out entering");
                        }
                        note(who, "enter", "exit");
                        say("dbarrier-entered " + who);
                    });
                    break;
                }
                case "dbarrier-leave": {
                    String who = a[1];
                    DistributedDoubleBarrier member = MEMBERS.get(who);
                    background(who, () -> {
                        note(who, "leave", "enter");
                        if (!member.leave(WAIT_SECONDS, TimeUnit.SECONDS)) {
                            throw new IllegalStateException(who + " timed out leaving");
                        }
                        note(who, "leave", "exit");
                        say("dbarrier-left " + who);
                    });
                    break;
                }
                case "select":
                    for (Map.Entry<String, CuratorFramework> entry : clients.entrySet()) {
                        Leader leader = new Leader(entry.getKey());
                        LeaderSelector selector = new LeaderSelector(entry.getValue(), a[1], leader);
                        selector.setId(entry.getKey());
                        selector.autoRequeue();
                        leaders.put(entry.getKey(), leader);
                        selectors.add(selector);
                        selector.start();
                    }
                    break;
                case "release":
                    leaders.get(a[1]).release.release();
                    break;
                case "session": {
                    ZooKeeper zk = clients.get(a[1]).getZookeeperClient().getZooKeeper();
                    StringBuilder hex = new StringBuilder();
                    for (byte b : zk.getSessionPasswd()) {
                        hex.append(String.format("%02x", b));
                    }
                    say("session " + a[1] + " " + zk.getSessionId() + " " + hex);
                    break;
                }
                case "quit":
                    for (LeaderSelector selector : selectors) {
                        selector.close();
                    }
                    if (count != null) {
                        count.close();
                    }
                    for (CuratorFramework client : clients.values()) {
                        client.close();
                    }
                    say(failed ? "failed" : "done");
                    System.exit(failed ? 4 : 0);
                    break;
                default:
                    System.err.println("unknown command " + line);
                    failed = true;
            }
        }
        System.exit(failed ? 4 : 0);
    }
}
