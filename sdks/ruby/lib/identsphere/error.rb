# frozen_string_literal: true

require "time"

module IdentSphere
  # Every refusal: an answer of IdentSphere in its error envelope, or a refusal of the Verifier or the
  # Rack middleware, which use the same codes. Callers switch on #code, exactly as in the error catalog;
  # the class follows the catalog's #type, so `rescue IdentSphere::AuthenticationError` works too.
  #
  # When no envelope could be read at all, the SDK raises a ClientError itself: `network_error` (status 0:
  # IdentSphere could not be reached or did not answer in time) or `unexpected_response` (an answer
  # without the envelope), as the other SDKs do.
  class Error < StandardError
    # The HTTP status (401, 403, ...; 0 when no answer was received).
    attr_reader :status
    # The catalog's stable code (`invalid_credentials`, `token_expired`, ...): what callers switch on.
    attr_reader :code
    # The catalog's class of the code (`authentication_error`, `permission_error`, ...).
    attr_reader :type
    # The offending request field, when IdentSphere names one.
    attr_reader :param
    # IdentSphere's `X-Request-Id` of the refused request, to find it in the server's log; nil for the
    # SDK's own refusals.
    attr_reader :request_id
    # Seconds to wait before trying again (`Retry-After` on 429 and 503), nil when the answer did not say.
    attr_reader :retry_after

    # The refusals the SDK makes itself: code => [status, type, message], the catalog's rows with the
    # server's own messages, so a Ruby service answers exactly as IdentSphere would.
    REFUSALS = {
      "token_missing" => [401, "authentication_error", "no token was sent"],
      "token_invalid" => [401, "authentication_error", "the token is not valid"],
      "token_expired" => [401, "authentication_error", "the token has expired"],
      "token_revoked" => [401, "authentication_error", "the token has been revoked"],
      "insufficient_aal" => [403, "permission_error", "this action needs a session verified with a second factor"],
      "not_a_member" => [403, "permission_error", "you are not a member of this organization"],
      "csrf_rejected" => [403, "permission_error", "cross-site request refused"],
      "service_unavailable" => [503, "api_error", "the authentication service is unavailable, retry shortly"]
    }.freeze

    # Builds the error of the class its type names (an unknown type: Error itself).
    def self.build(status:, code:, type:, message:, param: nil, request_id: nil, retry_after: nil)
      klass = CLASSES.fetch(type, Error)
      klass.new(status: status, code: code, type: type, message: message, param: param,
                request_id: request_id, retry_after: retry_after)
    end

    # One of the SDK's own refusals (REFUSALS), e.g. `Error.refusal("token_expired")`.
    def self.refusal(code)
      status, type, message = REFUSALS.fetch(code)
      build(status: status, code: code, type: type, message: message,
            retry_after: code == "service_unavailable" ? 1 : nil)
    end

    # The error a refused answer stands for: its envelope, or `unexpected_response` without one.
    # `headers` has lower-case names.
    def self.from_response(status, headers, body)
      error = envelope_of(body)
      request_id = headers["x-request-id"]
      unless error
        return build(status: status, code: "unexpected_response", type: "client_error",
                     message: "HTTP #{status} without the API's error envelope", request_id: request_id)
      end
      build(status: status, code: error["code"], type: error["type"], message: error["message"],
            param: error["param"].is_a?(String) ? error["param"] : nil, request_id: request_id,
            retry_after: parse_retry_after(headers["retry-after"]))
    end

    # A failure on the client's side: IdentSphere could not be reached, or did not answer in time.
    def self.network(message)
      build(status: 0, code: "network_error", type: "client_error", message: message)
    end

    # Seconds of a `Retry-After` value: delay-seconds (what IdentSphere sends) or an HTTP date.
    def self.parse_retry_after(value, now = Time.now)
      return nil if value.nil?
      return value.strip.to_i if value.strip.match?(/\A\d+\z/)

      [(Time.httpdate(value.strip) - now).round, 0].max
    rescue ArgumentError
      nil
    end

    def self.envelope_of(body)
      error = body.is_a?(Hash) ? body["error"] : nil
      return nil unless error.is_a?(Hash) && %w[code type message].all? { |key| error[key].is_a?(String) }

      error
    end
    private_class_method :envelope_of

    def initialize(status:, code:, type:, message:, param: nil, request_id: nil, retry_after: nil)
      super(message)
      @status = status
      @code = code
      @type = type
      @param = param
      @request_id = request_id
      @retry_after = retry_after
    end

    # The API's error envelope for this refusal, as IdentSphere itself would answer it.
    def envelope
      error = { "code" => code, "message" => message, "type" => type }
      error["param"] = param if param
      { "error" => error }
    end

    def inspect
      "#<#{self.class.name} #{status} #{code}: #{message}#{" (request #{request_id})" if request_id}>"
    end
  end

  # 401: no credential, or one that is not valid (`invalid_credentials`, `token_expired`, ...).
  class AuthenticationError < Error; end
  # 403: authenticated, not allowed (`insufficient_aal`, `not_a_member`, ...).
  class PermissionError < Error; end
  # 400, 404, 413, 415, 422: the request itself (`invalid_request`, `weak_password`, ...).
  class InvalidRequestError < Error; end
  # 409: the state does not allow it (`email_taken`, `mfa_already_enrolled`, ...).
  class ConflictError < Error; end
  # 429 `rate_limited`: see #retry_after.
  class RateLimitError < Error; end
  # 500 and 503: IdentSphere's side (`internal_error`, `service_unavailable`).
  class APIError < Error; end
  # No usable answer: `network_error` (status 0) or `unexpected_response`.
  class ClientError < Error; end

  class Error
    # The class of each type of the catalog.
    CLASSES = {
      "authentication_error" => AuthenticationError,
      "permission_error" => PermissionError,
      "invalid_request_error" => InvalidRequestError,
      "conflict_error" => ConflictError,
      "rate_limit_error" => RateLimitError,
      "api_error" => APIError,
      "client_error" => ClientError
    }.freeze
  end
end
