package dev.cpt4j.serve;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * A request the server refuses, with the HTTP status and OpenAI's error object
 * ({@code {"error": {"message", "type", "param", "code"}}}), so the OpenAI client libraries raise their usual
 * exception types (BadRequestError, AuthenticationError, NotFoundError, RateLimitError, …).
 */
final class ApiError extends RuntimeException {
    final int status;
    final String type, param, code;

    ApiError(int status, String type, String param, String code, String message) {
        super(message);
        this.status = status;
        this.type = type;
        this.param = param;
        this.code = code;
    }

    /** 400: a malformed body or a bad field ({@code param} names it, may be null). */
    static ApiError badRequest(String param, String message) {
        return new ApiError(400, "invalid_request_error", param, null, message);
    }

    ObjectNode body(ObjectMapper json) {
        ObjectNode o = json.createObjectNode();
        ObjectNode e = o.putObject("error");
        e.put("message", getMessage());
        e.put("type", type);
        if (param == null) e.putNull("param");
        else e.put("param", param);
        if (code == null) e.putNull("code");
        else e.put("code", code);
        return o;
    }
}
