// A Curator ServiceDiscovery for recipes/tests/discovery_interop.rs, driven line by line on
// standard input; every command answers on standard output.
//
// Usage: CuratorDiscoveryPeer <connect> <base path>
//
// The discovery writes the `enabled` field (JsonInstanceSerializer with compatible mode off)
// and its payloads are java.util.Map. Commands:
//   register <name> <id> <address> <port> <ssl port|-> <payload value> <registration ms>
//       registers a DYNAMIC instance with payload {"value": <payload value>} and the uri
//       spec "{scheme}://{address}:{port}"; answers "ok <json>" (the bytes it wrote)
//   instances <name>   answers one "instance <json>" per instance (read, then written
//                      again by Curator's serializer), then "end"
//   names              answers "names <n1> <n2> ..."
//   pick <name> <count> <picks>
//                      a round-robin ServiceProvider: waits until it sees <count> instances,
//                      answers "picked <id>" <picks> times, then "end"
//   quit               closes the discovery (unregistering) and exits
// Prints "ready" once started; "error <message>" for a failed command.

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.retry.ExponentialBackoffRetry;
import org.apache.curator.x.discovery.ServiceDiscovery;
import org.apache.curator.x.discovery.ServiceDiscoveryBuilder;
import org.apache.curator.x.discovery.ServiceInstance;
import org.apache.curator.x.discovery.ServiceProvider;
import org.apache.curator.x.discovery.ServiceType;
import org.apache.curator.x.discovery.UriSpec;
import org.apache.curator.x.discovery.details.JsonInstanceSerializer;

public final class CuratorDiscoveryPeer {
    private CuratorDiscoveryPeer() {}

    @SuppressWarnings({"rawtypes", "unchecked"})
    public static void main(String[] args) throws Exception {
        CuratorFramework client = CuratorFrameworkFactory.newClient(
                args[0], 10_000, 10_000, new ExponentialBackoffRetry(100, 10));
        client.start();
        client.blockUntilConnected();
        JsonInstanceSerializer<Map> serializer = new JsonInstanceSerializer<>(Map.class, false);
        ServiceDiscovery<Map> discovery = ServiceDiscoveryBuilder.builder(Map.class)
                .client(client)
                .basePath(args[1])
                .serializer(serializer)
                .build();
        discovery.start();
        System.out.println("ready");
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        while ((line = in.readLine()) != null) {
            String[] words = line.trim().split(" ");
            try {
                switch (words[0]) {
                    case "register": {
                        Map<String, String> payload = new HashMap<>();
                        payload.put("value", words[6]);
                        ServiceInstance<Map> instance = ServiceInstance.<Map>builder()
                                .name(words[1])
                                .id(words[2])
                                .address(words[3])
                                .port(Integer.parseInt(words[4]))
                                .sslPort(words[5].equals("-") ? null : Integer.valueOf(words[5]))
                                .payload(payload)
                                .registrationTimeUTC(Long.parseLong(words[7]))
                                .serviceType(ServiceType.DYNAMIC)
                                .uriSpec(new UriSpec("{scheme}://{address}:{port}"))
                                .build();
                        discovery.registerService(instance);
                        System.out.println("ok " + new String(serializer.serialize(instance), StandardCharsets.UTF_8));
                        break;
                    }
                    case "instances":
                        for (ServiceInstance<Map> instance : discovery.queryForInstances(words[1])) {
                            System.out.println("instance "
                                    + new String(serializer.serialize(instance), StandardCharsets.UTF_8));
                        }
                        System.out.println("end");
                        break;
                    case "names":
                        System.out.println("names " + String.join(" ", discovery.queryForNames()));
                        break;
                    case "pick": {
                        int count = Integer.parseInt(words[2]);
                        int picks = Integer.parseInt(words[3]);
                        ServiceProvider<Map> provider = discovery.serviceProviderBuilder()
                                .serviceName(words[1])
                                .build();
                        provider.start();
                        long deadline = System.currentTimeMillis() + 30_000;
                        while (provider.getAllInstances().size() != count) {
                            if (System.currentTimeMillis() > deadline) {
                                throw new IllegalStateException("provider saw "
                                        + provider.getAllInstances().size() + " instances, not " + count);
                            }
                            Thread.sleep(20);
                        }
                        for (int i = 0; i < picks; i++) {
                            System.out.println("picked " + provider.getInstance().getId());
                        }
                        provider.close();
                        System.out.println("end");
                        break;
                    }
                    case "quit":
                        discovery.close();
                        client.close();
                        return;
                    default:
                        System.out.println("error unknown command " + words[0]);
                }
            } catch (Exception e) {
                System.out.println("error " + e);
            }
            System.out.flush();
        }
    }
}
