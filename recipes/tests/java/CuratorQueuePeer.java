// Curator producers and consumers for recipes/tests/queue_interop.rs, on the same queue paths
// as the Rust recipes in zkwarden_recipes::queue. Items are UTF-8 strings.
//
// Usage:
//   CuratorQueuePeer produce <connect> <kind> <path> <count> <tag> [delay ms]
//       Puts <count> items "<tag>-<i>" with a Curator queue of <kind> (plain, priority, delay,
//       id). Priority queues put item i with priority (i * 7) % 5 - 2; delay queues put every
//       item due <delay ms> after the start, as "<tag>-<i>-<due epoch ms>"; id queues put
//       item i with id "id-<i>". Prints "done" when every put returned.
//   CuratorQueuePeer consume <connect> <kind> <path> <lock path or -> <count> [hold ms] [stop file]
//       Consumes with a Curator QueueConsumer (lock-safe when a lock path is given), prints
//       "got <item>" per item and then works on it for <hold ms>. With <count> > 0 it stops
//       after that many items; with 0 it stops once <stop file> exists. Prints "done" at the
//       end, after the queue is closed.
//   CuratorQueuePeer remove <connect> <path> <id>...
//       Removes items by id from a DistributedIdQueue; prints "removed <id> <count>" each.
//   CuratorQueuePeer simple-offer <connect> <path> <count> <tag>
//   CuratorQueuePeer simple-take <connect> <path> <count>
//       SimpleDistributedQueue: offers "<tag>-<i>", or takes <count> items printing
//       "got <item>". Prints "done" at the end.
//
// Every mode prints "ready" once connected; exits non-zero on failure or after 60 s waiting.

import java.nio.charset.StandardCharsets;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.queue.DistributedDelayQueue;
import org.apache.curator.framework.recipes.queue.DistributedIdQueue;
import org.apache.curator.framework.recipes.queue.DistributedPriorityQueue;
import org.apache.curator.framework.recipes.queue.DistributedQueue;
import org.apache.curator.framework.recipes.queue.QueueBase;
import org.apache.curator.framework.recipes.queue.QueueBuilder;
import org.apache.curator.framework.recipes.queue.QueueConsumer;
import org.apache.curator.framework.recipes.queue.QueueSerializer;
import org.apache.curator.framework.recipes.queue.SimpleDistributedQueue;
import org.apache.curator.framework.state.ConnectionState;
import org.apache.curator.retry.ExponentialBackoffRetry;

public final class CuratorQueuePeer {
    private CuratorQueuePeer() {}

    private static final long WAIT_SECONDS = 60;

    private static final QueueSerializer<String> UTF8 = new QueueSerializer<String>() {
        @Override
        public byte[] serialize(String item) {
            return item.getBytes(StandardCharsets.UTF_8);
        }

        @Override
        public String deserialize(byte[] bytes) {
            return new String(bytes, StandardCharsets.UTF_8);
        }
    };

    private static synchronized void say(String line) {
        System.out.println(line);
        System.out.flush();
    }

    private static QueueBase<String> build(QueueBuilder<String> builder, String kind) {
        switch (kind) {
            case "plain":
                return builder.buildQueue();
            case "priority":
                return builder.buildPriorityQueue(0);
            case "delay":
                return builder.buildDelayQueue();
            case "id":
                return builder.buildIdQueue();
            default:
                throw new IllegalArgumentException("unknown kind " + kind);
        }
    }

    private static void produce(CuratorFramework client, String[] args) throws Exception {
        String kind = args[2];
        String path = args[3];
        int count = Integer.parseInt(args[4]);
        String tag = args[5];
        long delayMs = args.length > 6 ? Long.parseLong(args[6]) : 0;
        QueueBase<String> queue = build(QueueBuilder.builder(client, null, UTF8, path), kind);
        queue.start();
        say("ready");
        long due = System.currentTimeMillis() + delayMs;
        for (int i = 0; i < count; i++) {
            String item = tag + "-" + i;
            switch (kind) {
                case "plain":
                    ((DistributedQueue<String>) queue).put(item);
                    break;
                case "priority":
                    ((DistributedPriorityQueue<String>) queue).put(item, (i * 7) % 5 - 2);
                    break;
                case "delay":
                    ((DistributedDelayQueue<String>) queue).put(item + "-" + due, due);
                    break;
                default:
                    ((DistributedIdQueue<String>) queue).put(item, "id-" + i);
                    break;
            }
        }
        queue.close();
        say("done");
    }

    private static void consume(CuratorFramework client, String[] args) throws Exception {
        String kind = args[2];
        String path = args[3];
        String lockPath = args[4];
        int count = Integer.parseInt(args[5]);
        long holdMs = args.length > 6 ? Long.parseLong(args[6]) : 0;
        CountDownLatch seen = new CountDownLatch(Math.max(count, 1));
        QueueConsumer<String> consumer = new QueueConsumer<String>() {
            @Override
            public void consumeMessage(String item) throws Exception {
                say("got " + item);
                seen.countDown();
                if (holdMs > 0) {
                    Thread.sleep(holdMs);
                }
            }

            @Override
            public void stateChanged(CuratorFramework c, ConnectionState state) {}
        };
        QueueBuilder<String> builder = QueueBuilder.builder(client, consumer, UTF8, path);
        if (!lockPath.equals("-")) {
            builder = builder.lockPath(lockPath);
        }
        QueueBase<String> queue = build(builder, kind);
        queue.start();
        say("ready");
        if (count > 0) {
            if (!seen.await(WAIT_SECONDS, TimeUnit.SECONDS)) {
                throw new IllegalStateException("only " + (count - seen.getCount()) + " items came");
            }
        } else {
            java.nio.file.Path stop = java.nio.file.Paths.get(args[7]);
            long deadline = System.currentTimeMillis() + 4 * WAIT_SECONDS * 1000;
            while (!java.nio.file.Files.exists(stop)) {
                if (System.currentTimeMillis() > deadline) {
                    throw new IllegalStateException("never told to stop");
                }
                Thread.sleep(20);
            }
        }
        queue.close();
        say("done");
    }

    private static void remove(CuratorFramework client, String[] args) throws Exception {
        DistributedIdQueue<String> queue = QueueBuilder.builder(client, null, UTF8, args[2]).buildIdQueue();
        queue.start();
        say("ready");
        for (int i = 3; i < args.length; i++) {
            say("removed " + args[i] + " " + queue.remove(args[i]));
        }
        queue.close();
        say("done");
    }

    private static void simple(CuratorFramework client, String[] args, boolean offer) throws Exception {
        SimpleDistributedQueue queue = new SimpleDistributedQueue(client, args[2]);
        int count = Integer.parseInt(args[3]);
        say("ready");
        for (int i = 0; i < count; i++) {
            if (offer) {
                queue.offer((args[4] + "-" + i).getBytes(StandardCharsets.UTF_8));
            } else {
                byte[] bytes = queue.poll(WAIT_SECONDS, TimeUnit.SECONDS);
                if (bytes == null) {
                    throw new IllegalStateException("only " + i + " items came");
                }
                say("got " + new String(bytes, StandardCharsets.UTF_8));
            }
        }
        say("done");
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 3) {
            System.err.println("usage: see the comment at the top of CuratorQueuePeer.java");
            System.exit(2);
        }
        CuratorFramework client = CuratorFrameworkFactory.newClient(
                args[1], 10_000, 10_000, new ExponentialBackoffRetry(50, 10));
        client.start();
        if (!client.blockUntilConnected(30, TimeUnit.SECONDS)) {
            System.err.println("not connected");
            System.exit(3);
        }
        try {
            switch (args[0]) {
                case "produce":
                    produce(client, args);
                    break;
                case "consume":
                    consume(client, args);
                    break;
                case "remove":
                    remove(client, args);
                    break;
                case "simple-offer":
                    simple(client, args, true);
                    break;
                case "simple-take":
                    simple(client, args, false);
                    break;
                default:
                    System.err.println("unknown mode " + args[0]);
                    System.exit(2);
            }
        } catch (Exception e) {
            System.err.println("CuratorQueuePeer failed: " + e);
            e.printStackTrace();
            client.close();
            System.exit(4);
        }
        client.close();
    }
}
