import com.sun.tools.attach.VirtualMachine;
import javax.management.*;
import javax.management.remote.*;
import java.util.*;

public class KafkaRequests {
    public static void main(String[] args) throws Exception {
        VirtualMachine vm = VirtualMachine.attach(args[0]);
        String url = vm.startLocalManagementAgent();
        vm.detach();
        try (JMXConnector c = JMXConnectorFactory.connect(new JMXServiceURL(url))) {
            MBeanServerConnection s = c.getMBeanServerConnection();
            TreeMap<String, Long> out = new TreeMap<>();
            for (ObjectName n : s.queryNames(new ObjectName("kafka.network:type=RequestMetrics,name=RequestsPerSec,*"), null)) {
                String key = n.getKeyProperty("request");
                long v = ((Number) s.getAttribute(n, "Count")).longValue();
                out.merge(key, v, Long::sum);
            }
            for (ObjectName n : s.queryNames(new ObjectName("kafka.server:type=BrokerTopicMetrics,name=*,*"), null)) {
                if (n.getKeyProperty("topic") != null) continue;
                String name = n.getKeyProperty("name");
                if (!name.endsWith("PerSec")) continue;
                out.put("broker." + name, ((Number) s.getAttribute(n, "Count")).longValue());
            }
            for (Map.Entry<String, Long> e : out.entrySet()) if (e.getValue() > 0) System.out.println(e.getKey() + " " + e.getValue());
        }
    }
}
