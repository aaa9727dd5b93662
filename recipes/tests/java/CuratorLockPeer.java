// A Curator InterProcessMutex contender for recipes/tests/curator_interop.rs and
// recipes/tests/lock_chaos.rs.
//
// Usage: CuratorLockPeer <connect string> <lock path> <rounds> <log file>
//                        [<hold ms> [<session file>]]
//
// Each round takes the lock, appends "java enter <nanos>" to the log, works for the hold
// time (default 2 ms), appends "java exit <nanos>", and releases. Every line is written
// with one append, so the log records the order in which holders came and went. Prints
// "ready" once connected and "done" at the end.
//
// With a session file, the peer also behaves like lock_worker's chaos interface: it writes
// its session ({"id":"java","session_id":"0x..","password":"<hex>"}) to the file each time
// Curator connects to a new session, prints "enter <round>", "exit <round>" and
// "lost <round>" on stdout, and stops a hold as soon as Curator reports the connection
// SUSPENDED or LOST, appending "java lost <nanos>" instead of exit. That measures how soon
// Curator tells a holder about a session expired on the server.

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.time.Instant;
import java.util.concurrent.TimeUnit;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.locks.InterProcessMutex;
import org.apache.curator.framework.state.ConnectionState;
import org.apache.curator.retry.ExponentialBackoffRetry;
import org.apache.zookeeper.ZooKeeper;

public final class CuratorLockPeer {
    private CuratorLockPeer() {}

    /** Guards the hold: the round being held, or -1. */
    private static final Object HOLD = new Object();
    private static int holding = -1;

    private static long wallNanos() {
        Instant now = Instant.now();
        return now.getEpochSecond() * 1_000_000_000L + now.getNano();
    }

    private static void note(Path log, String what) throws Exception {
        String line = "java " + what + " " + wallNanos() + "\n";
        Files.write(log, line.getBytes(StandardCharsets.UTF_8),
                StandardOpenOption.CREATE, StandardOpenOption.WRITE, StandardOpenOption.APPEND);
    }

    private static void say(String line) {
        synchronized (System.out) {
            System.out.println(line);
            System.out.flush();
        }
    }

    private static String hex(byte[] bytes) {
        StringBuilder out = new StringBuilder();
        for (byte b : bytes) {
            out.append(String.format("%02x", b & 0xff));
        }
        return out.toString();
    }

    /** Replaces the session file with the client's current session (temp file, rename). */
    private static void writeSession(CuratorFramework client, Path file) throws Exception {
        ZooKeeper zk = client.getZookeeperClient().getZooKeeper();
        String record = "{\"id\":\"java\",\"session_id\":\"0x" + Long.toHexString(zk.getSessionId())
                + "\",\"password\":\"" + hex(zk.getSessionPasswd()) + "\"}\n";
        Path tmp = Paths.get(file.toString() + ".tmp");
        Files.write(tmp, record.getBytes(StandardCharsets.UTF_8));
        Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        say("session 0x" + Long.toHexString(zk.getSessionId()));
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 4 || args.length > 6) {
            System.err.println(
                    "usage: CuratorLockPeer <connect> <path> <rounds> <log> [<hold ms> [<session file>]]");
            System.exit(2);
        }
        String connect = args[0];
        String lockPath = args[1];
        int rounds = Integer.parseInt(args[2]);
        Path log = Paths.get(args[3]);
        long holdMs = args.length >= 5 ? Long.parseLong(args[4]) : 2;
        Path sessionFile = args.length == 6 ? Paths.get(args[5]) : null;

        CuratorFramework client = CuratorFrameworkFactory.newClient(
                connect, 10_000, 10_000, new ExponentialBackoffRetry(50, 10));
        if (sessionFile != null) {
            client.getConnectionStateListenable().addListener((c, state) -> {
                try {
                    if (state == ConnectionState.CONNECTED || state == ConnectionState.RECONNECTED) {
                        writeSession(c, sessionFile);
                    } else if (state == ConnectionState.SUSPENDED || state == ConnectionState.LOST) {
                        synchronized (HOLD) {
                            if (holding >= 0) {
                                note(log, "lost");
                                say("lost " + holding);
                                holding = -1;
                                HOLD.notifyAll();
                            }
                        }
                    }
                } catch (Exception e) {
                    e.printStackTrace();
                }
            });
        }
        client.start();
        if (!client.blockUntilConnected(30, TimeUnit.SECONDS)) {
            System.err.println("not connected");
            System.exit(3);
        }
        say("ready");

        InterProcessMutex mutex = new InterProcessMutex(client, lockPath);
        for (int i = 1; i <= rounds; i++) {
            if (!mutex.acquire(60, TimeUnit.SECONDS)) {
                System.err.println("acquire timed out in round " + i);
                System.exit(4);
            }
            try {
                synchronized (HOLD) {
                    note(log, "enter");
                    holding = i;
                    if (sessionFile != null) {
                        say("enter " + i);
                    }
                    long until = System.nanoTime() + holdMs * 1_000_000L;
                    long left;
                    while (holding == i && (left = until - System.nanoTime()) > 0) {
                        TimeUnit.NANOSECONDS.timedWait(HOLD, left);
                    }
                    if (holding == i) {
                        note(log, "exit");
                        holding = -1;
                        if (sessionFile != null) {
                            say("exit " + i);
                        }
                    }
                }
            } finally {
                try {
                    mutex.release();
                } catch (Exception e) {
                    // The lock node went with an expired session: nothing left to release.
                    System.err.println("release in round " + i + ": " + e);
                }
            }
        }
        client.close();
        say("done");
    }
}
