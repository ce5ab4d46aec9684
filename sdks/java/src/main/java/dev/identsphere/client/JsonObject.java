package dev.identsphere.client;

import java.time.Instant;
import java.time.format.DateTimeParseException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;

import dev.identsphere.client.Json.JsonException;

/**
 * A parsed JSON object with typed reads: what turns a document IdentSphere sent into the SDK's records.
 * A missing required member, or one of the wrong type, is a {@link JsonException} naming the member
 * (never its value, which may be a secret). A member that is {@code null} counts as absent.
 */
record JsonObject(Map<String, Object> members) {

    /** Names only: the values may be tokens. */
    @Override
    public String toString() {
        return "JsonObject" + members.keySet();
    }

    String string(String name) {
        return optionalString(name).orElseThrow(() -> missing(name));
    }

    Optional<String> optionalString(String name) {
        return typed(name, String.class);
    }

    long number(String name) {
        return optionalNumber(name).orElseThrow(() -> missing(name));
    }

    /** An integer member; a fractional or out-of-range one is the wrong type. */
    Optional<Long> optionalNumber(String name) {
        return typed(name, Long.class);
    }

    boolean bool(String name) {
        return optionalBool(name).orElseThrow(() -> missing(name));
    }

    Optional<Boolean> optionalBool(String name) {
        return typed(name, Boolean.class);
    }

    JsonObject object(String name) {
        return optionalObject(name).orElseThrow(() -> missing(name));
    }

    Optional<JsonObject> optionalObject(String name) {
        return typed(name, Map.class).map(map -> new JsonObject(Json.cast(map)));
    }

    /** An RFC 3339 timestamp member. */
    Instant instant(String name) {
        String value = string(name);
        try {
            return Instant.parse(value);
        } catch (DateTimeParseException e) {
            throw new JsonException("member " + name + " is not an RFC 3339 timestamp");
        }
    }

    List<JsonObject> objects(String name) {
        List<JsonObject> out = new ArrayList<>();
        for (Object item : list(name)) {
            if (!(item instanceof Map<?, ?> map)) {
                throw wrongType(name);
            }
            out.add(new JsonObject(Json.cast(map)));
        }
        return List.copyOf(out);
    }

    List<String> strings(String name) {
        List<String> out = new ArrayList<>();
        for (Object item : list(name)) {
            if (!(item instanceof String s)) {
                throw wrongType(name);
            }
            out.add(s);
        }
        return List.copyOf(out);
    }

    private List<?> list(String name) {
        return typed(name, List.class).orElseThrow(() -> missing(name));
    }

    private <T> Optional<T> typed(String name, Class<T> type) {
        Object value = members.get(name);
        if (value == null) {
            return Optional.empty();
        }
        if (!type.isInstance(value)) {
            throw wrongType(name);
        }
        return Optional.of(type.cast(value));
    }

    private static JsonException missing(String name) {
        return new JsonException("member " + name + " is missing");
    }

    private static JsonException wrongType(String name) {
        return new JsonException("member " + name + " has the wrong type");
    }
}
