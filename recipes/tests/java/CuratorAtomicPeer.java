// Curator counters for recipes/tests/atomic_interop.rs, beside Rust ones on the same paths.
//
// Usage: CuratorAtomicPeer <connect> <long path> <int path> <lock path> <threads> <increments>
//
// Prints "ready" once connected, then reads commands on standard input:
//   go    every thread increments a DistributedAtomicLong (optimistic) and a
//         DistributedAtomicInteger (one optimistic try, then promoted to the mutex at
//         <lock path>) <increments> times each, repeating an increment that did not succeed;
//         answers "done" (or "error <message>")
//   read  answers "values <long> <int>" as Curator reads them
// Exits at the end of its input.

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.atomic.DistributedAtomicInteger;
import org.apache.curator.framework.recipes.atomic.DistributedAtomicLong;
import org.apache.curator.framework.recipes.atomic.PromotedToLock;
import org.apache.curator.retry.ExponentialBackoffRetry;
import org.apache.curator.retry.RetryNTimes;

public final class CuratorAtomicPeer {
    private CuratorAtomicPeer() {}

    public static void main(String[] args) throws Exception {
        String connect = args[0];
        String longPath = args[1];
        String intPath = args[2];
        String lockPath = args[3];
        int threads = Integer.parseInt(args[4]);
        int increments = Integer.parseInt(args[5]);
        CuratorFramework client = CuratorFrameworkFactory.newClient(
                connect, 10_000, 10_000, new ExponentialBackoffRetry(100, 10));
        client.start();
        client.blockUntilConnected();
        System.out.println("ready");
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        while ((line = in.readLine()) != null) {
            switch (line.trim()) {
                case "go": {
                    AtomicReference<Throwable> failure = new AtomicReference<>();
                    List<Thread> running = new ArrayList<>();
                    for (int t = 0; t < threads; t++) {
                        Thread thread = new Thread(() -> {
                            try {
                                DistributedAtomicLong counter =
                                        new DistributedAtomicLong(client, longPath, new RetryNTimes(10, 1));
                                PromotedToLock promotion = PromotedToLock.builder()
                                        .lockPath(lockPath)
                                        .retryPolicy(new RetryNTimes(10, 1))
                                        .timeout(30, TimeUnit.SECONDS)
                                        .build();
                                DistributedAtomicInteger integer = new DistributedAtomicInteger(
                                        client, intPath, new RetryNTimes(0, 0), promotion);
                                for (int i = 0; i < increments; i++) {
                                    while (!counter.increment().succeeded()) {
                                        // lost to other writers every time: try again
                                    }
                                    while (!integer.increment().succeeded()) {
                                        // lost even under the mutex: try again
                                    }
                                }
                            } catch (Throwable e) {
                                failure.compareAndSet(null, e);
                            }
                        });
                        thread.start();
                        running.add(thread);
                    }
                    for (Thread thread : running) {
                        thread.join();
                    }
                    System.out.println(failure.get() == null ? "done" : "error " + failure.get());
                    break;
                }
                case "read": {
                    long l = new DistributedAtomicLong(client, longPath, new RetryNTimes(0, 0)).get().postValue();
                    int n = new DistributedAtomicInteger(client, intPath, new RetryNTimes(0, 0)).get().postValue();
                    System.out.println("values " + l + " " + n);
                    break;
                }
                default:
                    System.out.println("error unknown command " + line);
            }
            System.out.flush();
        }
        client.close();
    }
}
