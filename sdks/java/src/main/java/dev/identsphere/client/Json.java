package dev.identsphere.client;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The SDK's JSON: a strict RFC 8259 reader into plain Java values, and a writer of the small request
 * bodies the client sends.
 *
 * <p>Why not a library: what the SDK reads is small and flat (JWT headers and claims, API answers, the
 * JWKS), and a JSON library on the runtime classpath of every service that verifies a token is a
 * dependency to keep in step with the application's own (Spring Boot manages its Jackson version) and a
 * source of advisories (Jackson's polymorphic deserialization). This reader builds only maps, lists,
 * strings, numbers, booleans and nulls, so no input can make it instantiate anything else.
 *
 * <p>Values read: {@code Map<String, Object>} (insertion order, a repeated name is refused),
 * {@code List<Object>}, {@code String}, {@code Long} for integers that fit, {@code Double} for every
 * other number, {@code Boolean} and {@code null}. Nesting deeper than {@value #MAX_DEPTH} is refused.
 */
final class Json {
    /** Deep enough for every document IdentSphere sends; shallow enough that no input can exhaust the stack. */
    static final int MAX_DEPTH = 32;

    private final String text;
    private int at;

    private Json(String text) {
        this.text = text;
    }

    /** A malformed document, or one of the wrong shape. Never carries the document: it may hold a secret. */
    static final class JsonException extends RuntimeException {
        private static final long serialVersionUID = 1L;

        JsonException(String message) {
            super(message);
        }
    }

    /**
     * Parses one JSON document.
     *
     * @throws JsonException if {@code text} is not exactly one well-formed JSON value
     */
    static Object parse(String text) {
        Json reader = new Json(text);
        reader.skipSpace();
        Object value = reader.value(0);
        reader.skipSpace();
        if (reader.at != text.length()) {
            throw reader.error("unexpected data after the value");
        }
        return value;
    }

    /**
     * Parses a document that must be an object.
     *
     * @throws JsonException if it is not well-formed or not an object
     */
    static JsonObject parseObject(String text) {
        if (parse(text) instanceof Map<?, ?> map) {
            return new JsonObject(cast(map));
        }
        throw new JsonException("expected a JSON object");
    }

    @SuppressWarnings("unchecked")
    static Map<String, Object> cast(Map<?, ?> map) {
        // Every map this reader builds has string keys.
        return (Map<String, Object>) map;
    }

    private Object value(int depth) {
        if (depth > MAX_DEPTH) {
            throw error("nested too deeply");
        }
        if (at >= text.length()) {
            throw error("unexpected end");
        }
        char c = text.charAt(at);
        switch (c) {
            case '{':
                return object(depth);
            case '[':
                return array(depth);
            case '"':
                return string();
            case 't':
                return literal("true", Boolean.TRUE);
            case 'f':
                return literal("false", Boolean.FALSE);
            case 'n':
                return literal("null", null);
            default:
                if (c == '-' || (c >= '0' && c <= '9')) {
                    return number();
                }
                throw error("unexpected character");
        }
    }

    private Map<String, Object> object(int depth) {
        at++;
        Map<String, Object> map = new LinkedHashMap<>();
        skipSpace();
        if (peek() == '}') {
            at++;
            return Collections.unmodifiableMap(map);
        }
        while (true) {
            skipSpace();
            if (peek() != '"') {
                throw error("expected a member name");
            }
            String name = string();
            skipSpace();
            expect(':');
            skipSpace();
            Object member = value(depth + 1);
            // A repeated name is how two parsers of one token disagree on its claims: refuse it.
            if (map.containsKey(name)) {
                throw error("repeated member name");
            }
            map.put(name, member);
            skipSpace();
            char next = take();
            if (next == '}') {
                return Collections.unmodifiableMap(map);
            }
            if (next != ',') {
                throw error("expected ',' or '}'");
            }
        }
    }

    private List<Object> array(int depth) {
        at++;
        List<Object> list = new ArrayList<>();
        skipSpace();
        if (peek() == ']') {
            at++;
            return Collections.unmodifiableList(list);
        }
        while (true) {
            skipSpace();
            list.add(value(depth + 1));
            skipSpace();
            char next = take();
            if (next == ']') {
                return Collections.unmodifiableList(list);
            }
            if (next != ',') {
                throw error("expected ',' or ']'");
            }
        }
    }

    private String string() {
        at++;
        StringBuilder out = new StringBuilder();
        while (true) {
            char c = take();
            if (c == '"') {
                return out.toString();
            }
            if (c < 0x20) {
                throw error("control character in a string");
            }
            if (c != '\\') {
                out.append(c);
                continue;
            }
            char escape = take();
            switch (escape) {
                case '"', '\\', '/' -> out.append(escape);
                case 'b' -> out.append('\b');
                case 'f' -> out.append('\f');
                case 'n' -> out.append('\n');
                case 'r' -> out.append('\r');
                case 't' -> out.append('\t');
                case 'u' -> out.append(hex4());
                default -> throw error("bad escape");
            }
        }
    }

    private char hex4() {
        if (at + 4 > text.length()) {
            throw error("unexpected end");
        }
        int code = 0;
        for (int i = 0; i < 4; i++) {
            int digit = Character.digit(text.charAt(at++), 16);
            if (digit < 0) {
                throw error("bad \\u escape");
            }
            code = code * 16 + digit;
        }
        return (char) code;
    }

    private Object number() {
        int start = at;
        if (peek() == '-') {
            at++;
        }
        if (peek() == '0') {
            at++;
        } else if (digits() == 0) {
            throw error("bad number");
        }
        boolean integral = true;
        if (peek() == '.') {
            at++;
            integral = false;
            if (digits() == 0) {
                throw error("bad number");
            }
        }
        if (peek() == 'e' || peek() == 'E') {
            at++;
            integral = false;
            if (peek() == '+' || peek() == '-') {
                at++;
            }
            if (digits() == 0) {
                throw error("bad number");
            }
        }
        String literal = text.substring(start, at);
        if (integral) {
            try {
                return Long.parseLong(literal);
            } catch (NumberFormatException tooLarge) {
                // Fall through: a double keeps its magnitude.
            }
        }
        return Double.parseDouble(literal);
    }

    private int digits() {
        int start = at;
        while (at < text.length() && text.charAt(at) >= '0' && text.charAt(at) <= '9') {
            at++;
        }
        return at - start;
    }

    private Object literal(String word, Object value) {
        if (!text.startsWith(word, at)) {
            throw error("unexpected character");
        }
        at += word.length();
        return value;
    }

    private void skipSpace() {
        while (at < text.length()) {
            char c = text.charAt(at);
            if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
                return;
            }
            at++;
        }
    }

    private char peek() {
        return at < text.length() ? text.charAt(at) : '\0';
    }

    private char take() {
        if (at >= text.length()) {
            throw error("unexpected end");
        }
        return text.charAt(at++);
    }

    private void expect(char c) {
        if (take() != c) {
            throw error("expected '" + c + "'");
        }
    }

    private JsonException error(String what) {
        return new JsonException("malformed JSON at offset " + at + ": " + what);
    }

    /**
     * Writes an object of strings, booleans and numbers (the request bodies); {@code null} members are
     * left out, as the API reads an absent optional field and a {@code null} one alike.
     */
    static String write(Map<String, ?> members) {
        StringBuilder out = new StringBuilder("{");
        for (Map.Entry<String, ?> member : members.entrySet()) {
            Object value = member.getValue();
            if (value == null) {
                continue;
            }
            if (out.length() > 1) {
                out.append(',');
            }
            quote(out, member.getKey());
            out.append(':');
            if (value instanceof String s) {
                quote(out, s);
            } else if (value instanceof Boolean || value instanceof Long || value instanceof Integer) {
                out.append(value);
            } else {
                throw new IllegalArgumentException("cannot write a " + value.getClass().getName());
            }
        }
        return out.append('}').toString();
    }

    private static void quote(StringBuilder out, String s) {
        out.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> out.append("\\\"");
                case '\\' -> out.append("\\\\");
                case '\n' -> out.append("\\n");
                case '\r' -> out.append("\\r");
                case '\t' -> out.append("\\t");
                default -> {
                    if (c < 0x20) {
                        out.append(String.format("\\u%04x", (int) c));
                    } else {
                        out.append(c);
                    }
                }
            }
        }
        out.append('"');
    }
}
