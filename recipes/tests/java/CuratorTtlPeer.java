// A Curator PersistentTtlNode for recipes/tests/ttl_node.rs, kept beside a Rust one.
//
// Usage: CuratorTtlPeer <connect> <path> <ttl ms>
//
// Prints "ready" once connected, then reads commands on standard input:
//   start  starts a PersistentTtlNode at <path> holding "curator"; answers "started" once the
//          node exists
//   close  closes it (Curator leaves the node to the server's TTL); answers "closed"
// Exits at the end of its input.

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.TimeUnit;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.nodes.PersistentTtlNode;
import org.apache.curator.retry.ExponentialBackoffRetry;

public final class CuratorTtlPeer {
    private CuratorTtlPeer() {}

    public static void main(String[] args) throws Exception {
        CuratorFramework client = CuratorFrameworkFactory.newClient(
                args[0], 10_000, 10_000, new ExponentialBackoffRetry(100, 10));
        client.start();
        client.blockUntilConnected();
        System.out.println("ready");
        PersistentTtlNode node = null;
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        while ((line = in.readLine()) != null) {
            switch (line.trim()) {
                case "start":
                    node = new PersistentTtlNode(client, args[1], Long.parseLong(args[2]),
                            "curator".getBytes(StandardCharsets.UTF_8));
                    node.start();
                    System.out.println(node.waitForInitialCreate(30, TimeUnit.SECONDS) ? "started" : "error not created");
                    break;
                case "close":
                    if (node != null) {
                        node.close();
                    }
                    System.out.println("closed");
                    break;
                default:
                    System.out.println("error unknown command " + line);
            }
            System.out.flush();
        }
        client.close();
    }
}
