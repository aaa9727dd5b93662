// A Curator InterProcessMutex contender for recipes/tests/curator_interop.rs.
//
// Usage: CuratorLockPeer <connect string> <lock path> <rounds> <log file>
//
// Each round takes the lock, appends "java enter <nanos>" to the log, works briefly,
// appends "java exit <nanos>", and releases. Every line is written with one append, so the
// log records the order in which holders came and went. Prints "ready" once connected and
// "done" at the end.

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardOpenOption;
import java.time.Instant;
import java.util.concurrent.TimeUnit;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.locks.InterProcessMutex;
import org.apache.curator.retry.ExponentialBackoffRetry;

public final class CuratorLockPeer {
    private CuratorLockPeer() {}

    private static long wallNanos() {
        Instant now = Instant.now();
        return now.getEpochSecond() * 1_000_000_000L + now.getNano();
    }

    private static void note(Path log, String what) throws Exception {
        String line = "java " + what + " " + wallNanos() + "\n";
        Files.write(log, line.getBytes(StandardCharsets.UTF_8),
                StandardOpenOption.CREATE, StandardOpenOption.WRITE, StandardOpenOption.APPEND);
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 4) {
            System.err.println("usage: CuratorLockPeer <connect> <path> <rounds> <log>");
            System.exit(2);
        }
        String connect = args[0];
        String lockPath = args[1];
        int rounds = Integer.parseInt(args[2]);
        Path log = Paths.get(args[3]);

        CuratorFramework client = CuratorFrameworkFactory.newClient(
                connect, 10_000, 10_000, new ExponentialBackoffRetry(50, 10));
        client.start();
        if (!client.blockUntilConnected(30, TimeUnit.SECONDS)) {
            System.err.println("not connected");
            System.exit(3);
        }
        System.out.println("ready");
        System.out.flush();

        InterProcessMutex mutex = new InterProcessMutex(client, lockPath);
        for (int i = 0; i < rounds; i++) {
            if (!mutex.acquire(60, TimeUnit.SECONDS)) {
                System.err.println("acquire timed out in round " + i);
                System.exit(4);
            }
            try {
                note(log, "enter");
                Thread.sleep(2);
                note(log, "exit");
            } finally {
                mutex.release();
            }
        }
        client.close();
        System.out.println("done");
        System.out.flush();
    }
}
