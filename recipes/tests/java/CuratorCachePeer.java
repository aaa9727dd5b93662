// Curator's CuratorCache loading a tree, for recipes/benches/cache.rs (beside our TreeCache and
// kazoo's TreeCache in the same run).
//
// Usage: CuratorCachePeer <connect> <root>
//
// Prints "ready" once connected, then reads commands on standard input:
//   load <nodes>  builds a CuratorCache of <root>, and once it reports initialized and holds
//         <nodes> nodes answers "loaded <milliseconds from start until then> <cached nodes>".
//         Curator 5.4 reports initialized early and stops short on trees of more than 64K
//         nodes (CURATOR-690, fixed in 5.6): once its count has not grown for 2 s, the
//         answer gives the time of its last growth and what it holds.
//   quit  closes the cache and the client and exits (so does the end of input)

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.CountDownLatch;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.cache.CuratorCache;
import org.apache.curator.framework.recipes.cache.CuratorCacheListener;
import org.apache.curator.retry.ExponentialBackoffRetry;

public final class CuratorCachePeer {
    private CuratorCachePeer() {}

    public static void main(String[] args) throws Exception {
        CuratorFramework client = CuratorFrameworkFactory.newClient(
                args[0], 30_000, 10_000, new ExponentialBackoffRetry(100, 10));
        client.start();
        client.blockUntilConnected();
        System.out.println("ready");
        CuratorCache cache = null;
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        while ((line = in.readLine()) != null) {
            String command = line.trim();
            if (command.startsWith("load ")) {
                long expected = Long.parseLong(command.substring(5).trim());
                CountDownLatch initialized = new CountDownLatch(1);
                long started = System.nanoTime();
                cache = CuratorCache.build(client, args[1]);
                cache.listenable().addListener(
                        CuratorCacheListener.builder().forInitialized(initialized::countDown).build());
                cache.start();
                initialized.await();
                long grew = System.nanoTime();
                long held = cache.size();
                while (held < expected && System.nanoTime() - grew < 2_000_000_000L) {
                    Thread.sleep(1);
                    long now = cache.size();
                    if (now > held) {
                        held = now;
                        grew = System.nanoTime();
                    }
                }
                long millis = (grew - started) / 1_000_000;
                System.out.println("loaded " + millis + " " + cache.size());
            } else if (command.equals("quit")) {
                break;
            } else {
                System.out.println("error unknown command " + command);
            }
        }
        if (cache != null) {
            cache.close();
        }
        client.close();
    }
}
