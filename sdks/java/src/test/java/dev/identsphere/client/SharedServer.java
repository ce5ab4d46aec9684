package dev.identsphere.client;

import java.util.Map;

import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.jupiter.api.extension.ParameterContext;
import org.junit.jupiter.api.extension.ParameterResolver;

/**
 * Hands tests the IdentSphere most of them share ({@code @ExtendWith(SharedServer.class)}, then a
 * {@link TestServer} parameter): started once for the whole run and stopped when it ends. Tests that need
 * other settings, or count requests at the server, start their own.
 */
final class SharedServer implements ParameterResolver {

    @Override
    public boolean supportsParameter(ParameterContext parameter, ExtensionContext context) {
        return parameter.getParameter().getType() == TestServer.class;
    }

    @Override
    public Object resolveParameter(ParameterContext parameter, ExtensionContext context) {
        ExtensionContext.Store store = context.getRoot().getStore(ExtensionContext.Namespace.GLOBAL);
        return store.getOrComputeIfAbsent(SharedServer.class, key -> new Running(TestServer.start(Map.of())),
                Running.class).server;
    }

    /** The shared server, closed by JUnit at the end of the run. */
    private record Running(TestServer server) implements ExtensionContext.Store.CloseableResource {
        @Override
        public void close() {
            server.close();
        }
    }
}
