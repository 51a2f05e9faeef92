// A Java client for the watchdog's tests: connects to a loopback port, never reads, never closes.
// Once the peer closes, its socket sits in CLOSE_WAIT. A shutdown hook prints SIGNALLED if it is ever
// asked to stop (SIGTERM/SIGINT), so a test can tell that nobody signalled it.
import java.net.Socket;

public class HoldSocket {
    public static void main(String[] args) throws Exception {
        Socket socket = new Socket("127.0.0.1", Integer.parseInt(args[0]));
        Runtime.getRuntime().addShutdownHook(new Thread(() -> System.out.println("SIGNALLED")));
        System.out.println("connected " + socket.getLocalPort());
        System.out.flush();
        Thread.sleep(Long.MAX_VALUE);
    }
}
