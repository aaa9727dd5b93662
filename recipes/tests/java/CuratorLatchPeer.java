// A Curator LeaderLatch participant for recipes/tests/leader_interop.rs.
//
// Usage: CuratorLatchPeer <connect string> <latch path> <id> <log file> <session timeout ms>
//
// It joins the election at once and appends "<id> gain <nanos>" / "<id> loss <nanos>" to the
// log (one append per line) whenever Curator tells it that it gained or lost leadership,
// echoing each line on stdout. Commands on stdin, one per line:
//   close    note "loss" if leading, note "close", then close the latch (leave the election)
//   start    join again with a new latch
//   session  print "session <id> <password hex>" for the current ZooKeeper session
//   quit     leave, close the client, print "done" and exit
// Prints "ready" once connected.

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardOpenOption;
import java.time.Instant;
import java.util.concurrent.TimeUnit;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.leader.LeaderLatch;
import org.apache.curator.framework.recipes.leader.LeaderLatchListener;
import org.apache.curator.retry.RetryForever;
import org.apache.zookeeper.ZooKeeper;

public final class CuratorLatchPeer {
    private static final Object LOCK = new Object();
    private static String id;
    private static Path log;
    private static CuratorFramework client;
    private static String latchPath;
    // Guarded by LOCK.
    private static LeaderLatch current;
    private static boolean leading;

    private CuratorLatchPeer() {}

    private static long wallNanos() {
        Instant now = Instant.now();
        return now.getEpochSecond() * 1_000_000_000L + now.getNano();
    }

    /** Appends one line to the log and echoes it. Call with LOCK held. */
    private static void note(String what) {
        String line = id + " " + what + " " + wallNanos();
        try {
            Files.write(log, (line + "\n").getBytes(StandardCharsets.UTF_8),
                    StandardOpenOption.CREATE, StandardOpenOption.WRITE, StandardOpenOption.APPEND);
        } catch (Exception e) {
            System.err.println("cannot write the log: " + e);
            System.exit(5);
        }
        System.out.println(line);
        System.out.flush();
    }

    private static void startLatch() throws Exception {
        final LeaderLatch latch = new LeaderLatch(client, latchPath, id);
        latch.addListener(new LeaderLatchListener() {
            @Override
            public void isLeader() {
                synchronized (LOCK) {
                    if (current == latch && !leading) {
                        leading = true;
                        note("gain");
                    }
                }
            }

            @Override
            public void notLeader() {
                synchronized (LOCK) {
                    if (current == latch && leading) {
                        leading = false;
                        note("loss");
                    }
                }
            }
        });
        synchronized (LOCK) {
            current = latch;
        }
        latch.start();
    }

    private static void closeLatch() throws Exception {
        LeaderLatch latch;
        synchronized (LOCK) {
            latch = current;
            current = null;
            if (leading) {
                leading = false;
                note("loss");
            }
            if (latch != null) {
                note("close");
            }
        }
        if (latch != null) {
            latch.close();
        }
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 5) {
            System.err.println("usage: CuratorLatchPeer <connect> <path> <id> <log> <session ms>");
            System.exit(2);
        }
        String connect = args[0];
        latchPath = args[1];
        id = args[2];
        log = Paths.get(args[3]);
        int sessionMs = Integer.parseInt(args[4]);

        client = CuratorFrameworkFactory.newClient(connect, sessionMs, 10_000, new RetryForever(100));
        client.start();
        if (!client.blockUntilConnected(30, TimeUnit.SECONDS)) {
            System.err.println("not connected");
            System.exit(3);
        }
        System.out.println("ready");
        System.out.flush();
        startLatch();

        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String command;
        while ((command = in.readLine()) != null) {
            switch (command.trim()) {
                case "close":
                    closeLatch();
                    break;
                case "start":
                    startLatch();
                    break;
                case "session": {
                    ZooKeeper zk = client.getZookeeperClient().getZooKeeper();
                    StringBuilder hex = new StringBuilder();
                    for (byte b : zk.getSessionPasswd()) {
                        hex.append(String.format("%02x", b));
                    }
                    synchronized (LOCK) {
                        System.out.println("session " + zk.getSessionId() + " " + hex);
                        System.out.flush();
                    }
                    break;
                }
                case "quit":
                    closeLatch();
                    client.close();
                    System.out.println("done");
                    System.out.flush();
                    System.exit(0);
                    break;
                default:
                    System.err.println("unknown command " + command);
            }
        }
        closeLatch();
        client.close();
    }
}
