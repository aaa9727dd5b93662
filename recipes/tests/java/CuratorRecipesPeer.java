// Curator contenders for recipes/tests/curator_recipes_interop.rs: readers and writers of an
// InterProcessReadWriteLock, holders of InterProcessSemaphoreV2 leases, or holders of an
// InterProcessSemaphoreMutex (logged as leases of a one-lease semaphore).
//
// Usage:
//   CuratorRecipesPeer rw  <connect> <path> <log> <readers> <writers> <rounds> <hold ms>
//   CuratorRecipesPeer sem <connect> <path> <log> <max leases> <threads> <rounds> <hold ms>
//   CuratorRecipesPeer semmutex <connect> <path> <log> <ignored> <threads> <rounds> <hold ms>
//
// Every thread has its own recipe object and takes it <rounds> times. Inside, it appends
// "java-<r|w|s><thread> <read|write|lease> enter <nanos>" to the log, works for <hold ms>, and
// appends the matching "exit" line before releasing. Each line is one append, so the log
// records the order in which holders came and went. Prints "ready" once connected, "done"
// at the end; exits non-zero if any acquire times out or fails.

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardOpenOption;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.locks.InterProcessMutex;
import org.apache.curator.framework.recipes.locks.InterProcessReadWriteLock;
import org.apache.curator.framework.recipes.locks.InterProcessSemaphoreMutex;
import org.apache.curator.framework.recipes.locks.InterProcessSemaphoreV2;
import org.apache.curator.framework.recipes.locks.Lease;
import org.apache.curator.retry.ExponentialBackoffRetry;

public final class CuratorRecipesPeer {
    private CuratorRecipesPeer() {}

    private static final long WAIT_SECONDS = 60;

    private static long wallNanos() {
        Instant now = Instant.now();
        return now.getEpochSecond() * 1_000_000_000L + now.getNano();
    }

    private static void note(Path log, String who, String mode, String what) throws Exception {
        String line = who + " " + mode + " " + what + " " + wallNanos() + "\n";
        Files.write(log, line.getBytes(StandardCharsets.UTF_8),
                StandardOpenOption.CREATE, StandardOpenOption.WRITE, StandardOpenOption.APPEND);
    }

    /** How long a holder stays inside, in milliseconds. */
    private static long holdMillis = 2;

    /** One critical section: enter, work, exit. */
    private static void section(Path log, String who, String mode) throws Exception {
        note(log, who, mode, "enter");
        Thread.sleep(holdMillis);
        note(log, who, mode, "exit");
    }

    private interface Body {
        void run() throws Exception;
    }

    private static Thread start(String name, AtomicBoolean failed, Body body) {
        Thread thread = new Thread(() -> {
            try {
                body.run();
            } catch (Throwable e) {
                System.err.println(name + " failed: " + e);
                failed.set(true);
            }
        }, name);
        thread.start();
        return thread;
    }

    private static void lockRounds(InterProcessMutex lock, Path log, String who, String mode, int rounds)
            throws Exception {
        for (int i = 0; i < rounds; i++) {
            if (!lock.acquire(WAIT_SECONDS, TimeUnit.SECONDS)) {
                throw new IllegalStateException(who + " timed out in round " + i);
            }
            try {
                section(log, who, mode);
            } finally {
                lock.release();
            }
        }
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 8) {
            System.err.println("usage: CuratorRecipesPeer <rw|sem|semmutex> <connect> <path> <log> <a> <b> <rounds> <hold ms>");
            System.exit(2);
        }
        String kind = args[0];
        String connect = args[1];
        String path = args[2];
        Path log = Paths.get(args[3]);
        int a = Integer.parseInt(args[4]);
        int b = Integer.parseInt(args[5]);
        int rounds = Integer.parseInt(args[6]);
        holdMillis = Long.parseLong(args[7]);

        CuratorFramework client = CuratorFrameworkFactory.newClient(
                connect, 10_000, 10_000, new ExponentialBackoffRetry(50, 10));
        client.start();
        if (!client.blockUntilConnected(30, TimeUnit.SECONDS)) {
            System.err.println("not connected");
            System.exit(3);
        }
        System.out.println("ready");
        System.out.flush();

        AtomicBoolean failed = new AtomicBoolean(false);
        List<Thread> threads = new ArrayList<>();
        if (kind.equals("rw")) {
            for (int i = 0; i < a; i++) {
                String who = "java-r" + i;
                InterProcessReadWriteLock lock = new InterProcessReadWriteLock(client, path);
                threads.add(start(who, failed, () -> lockRounds(lock.readLock(), log, who, "read", rounds)));
            }
            for (int i = 0; i < b; i++) {
                String who = "java-w" + i;
                InterProcessReadWriteLock lock = new InterProcessReadWriteLock(client, path);
                threads.add(start(who, failed, () -> lockRounds(lock.writeLock(), log, who, "write", rounds)));
            }
        } else if (kind.equals("sem")) {
            for (int i = 0; i < b; i++) {
                String who = "java-s" + i;
                InterProcessSemaphoreV2 semaphore = new InterProcessSemaphoreV2(client, path, a);
                threads.add(start(who, failed, () -> {
                    for (int r = 0; r < rounds; r++) {
                        Lease lease = semaphore.acquire(WAIT_SECONDS, TimeUnit.SECONDS);
                        if (lease == null) {
                            throw new IllegalStateException(who + " timed out in round " + r);
                        }
                        try {
                            section(log, who, "lease");
                        } finally {
                            semaphore.returnLease(lease);
                        }
                    }
                }));
            }
        } else if (kind.equals("semmutex")) {
            for (int i = 0; i < b; i++) {
                String who = "java-m" + i;
                InterProcessSemaphoreMutex mutex = new InterProcessSemaphoreMutex(client, path);
                threads.add(start(who, failed, () -> {
                    for (int r = 0; r < rounds; r++) {
                        if (!mutex.acquire(WAIT_SECONDS, TimeUnit.SECONDS)) {
                            throw new IllegalStateException(who + " timed out in round " + r);
                        }
                        try {
                            section(log, who, "lease");
                        } finally {
                            mutex.release();
                        }
                    }
                }));
            }
        } else {
            System.err.println("unknown kind " + kind);
            System.exit(2);
        }
        for (Thread thread : threads) {
            thread.join();
        }
        client.close();
        if (failed.get()) {
            System.exit(4);
        }
        System.out.println("done");
        System.out.flush();
    }
}
