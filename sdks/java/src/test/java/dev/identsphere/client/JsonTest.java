package dev.identsphere.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.time.Duration;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;

import dev.identsphere.client.Json.JsonException;

/** The SDK's JSON reader is strict where a lenient one would let two parsers disagree about a token. */
class JsonTest {

    @Test
    void values_read_into_plain_java_types() {
        Object value = Json.parse(" {\"s\":\"a\\\"\\u00e9\\n\",\"i\":-42,\"big\":123456789012345678901,\"f\":1.5e2,"
                + "\"t\":true,\"n\":null,\"l\":[1,{}]} ");
        Map<String, Object> expected = new LinkedHashMap<>();
        expected.put("s", "a\"é\n");
        expected.put("i", -42L);
        expected.put("big", 1.2345678901234568E20);
        expected.put("f", 150.0);
        expected.put("t", true);
        expected.put("n", null);
        expected.put("l", List.of(1L, Map.of()));
        assertEquals(expected, value);
    }

    @Test
    void malformed_or_ambiguous_documents_are_refused() {
        for (String bad : List.of("", "{", "{\"a\":1,}", "[1,]", "{\"a\":1}x", "01", "-", "1.", ".5", "1e", "tru",
                "\"\u0001\"", "\"\\x\"", "\"\\u12\"", "{\"a\":1,\"a\":2}", "{a:1}", "'a'", "[1 2]", "NaN")) {
            assertThrows(JsonException.class, () -> Json.parse(bad), bad);
        }
        char[] deep = new char[Json.MAX_DEPTH + 2];
        Arrays.fill(deep, '[');
        assertThrows(JsonException.class, () -> Json.parse(new String(deep)));
    }

    @Test
    void typed_reads_name_the_member_never_its_value() {
        JsonObject object = Json.parseObject("{\"secret\":42,\"when\":\"yesterday\"}");
        assertEquals("member secret has the wrong type",
                assertThrows(JsonException.class, () -> object.string("secret")).getMessage());
        assertEquals("member when is not an RFC 3339 timestamp",
                assertThrows(JsonException.class, () -> object.instant("when")).getMessage());
        assertEquals("member absent is missing",
                assertThrows(JsonException.class, () -> object.number("absent")).getMessage());
        assertEquals("JsonObject[secret, when]", object.toString());
    }

    @Test
    void request_bodies_are_written_with_escapes_and_without_absent_members() {
        Map<String, Object> body = new LinkedHashMap<>();
        body.put("email", "a\"b\\c\n\u0001@example.com");
        body.put("organization", null);
        body.put("flag", true);
        assertEquals("{\"email\":\"a\\\"b\\\\c\\n\\u0001@example.com\",\"flag\":true}", Json.write(body));
        assertEquals(body.get("email"), Json.parseObject(Json.write(body)).string("email"));
        assertThrows(IllegalArgumentException.class, () -> Json.write(Map.of("d", Duration.ZERO)));
    }
}
