# frozen_string_literal: true

require "json"
require "net/http"
require "openssl"
require "uri"

module IdentSphere
  # The default transport: one request per call over Net::HTTP, with timeouts.
  #
  # A transport is any object with `call(method, uri, headers, body)` returning an HTTP::Response, so an
  # application can bring its own (a proxy, a connection pool, instrumentation). It raises
  # IdentSphere::Error (`network_error`) when no answer arrives; it never retries: sign-in, refresh and
  # logout are not idempotent, and a retried refresh would spend the new refresh token.
  class HTTP
    # An answer: status, headers by lower-case name, body.
    Response = Struct.new(:status, :headers, :body)

    # The errors of a request that got no answer (Net::HTTP raises these, not one common class).
    NO_ANSWER = [IOError, SystemCallError, SocketError, Timeout::Error, OpenSSL::SSL::SSLError,
                 Net::ProtocolError].freeze

    # `open_timeout`: seconds to connect. `timeout`: seconds each read and write of the exchange may take;
    # IdentSphere's answers are small, so this bounds the whole call in practice (Net::HTTP on Ruby 3.1
    # has no overall deadline, and Timeout.timeout can interrupt a thread anywhere).
    def initialize(open_timeout: 5, timeout: 10)
      @open_timeout = open_timeout
      @timeout = timeout
    end

    def call(method, uri, headers, body)
      request = Net::HTTPGenericRequest.new(method, !body.nil?, true, uri.request_uri, headers)
      request.body = body
      Net::HTTP.start(uri.host, uri.port, use_ssl: uri.scheme == "https", open_timeout: @open_timeout,
                                          read_timeout: @timeout, write_timeout: @timeout,
                                          max_retries: 0) do |http|
        answer = http.request(request)
        Response.new(answer.code.to_i, answer.each_header.to_h, answer.body.to_s)
      end
    rescue *NO_ANSWER => e
      raise Error.network("#{method} #{uri.scheme}://#{uri.host}:#{uri.port}#{uri.path}: #{e.class}: #{e.message}")
    end
  end

  # Where IdentSphere is and how to reach it: shared by the Client, the Verifier's key cache and the
  # revocation feed, so every request carries the same User-Agent and goes through one transport.
  class Connection
    USER_AGENT = "identsphere-ruby/#{VERSION} (ruby #{RUBY_VERSION})"

    attr_reader :base_url

    # `base_url`: `https://auth.example.com` (a trailing `/` is ignored).
    def initialize(base_url, transport:)
      @base_url = base_url.to_s.chomp("/")
      unless @base_url.match?(%r{\Ahttps?://[^/]+}i)
        raise ArgumentError, "the IdentSphere base URL must start with http:// or https://: #{base_url.inspect}"
      end

      @transport = transport
    end

    # Sends one request; `body` (a Hash) goes as JSON, `bearer` as `Authorization: Bearer`.
    def request(method, path, bearer: nil, body: nil, query: nil)
      uri = URI("#{@base_url}#{path}")
      uri.query = URI.encode_www_form(query) if query
      headers = { "Accept" => "application/json", "User-Agent" => USER_AGENT }
      headers["Authorization"] = "Bearer #{bearer}" if bearer
      headers["Content-Type"] = "application/json" if body
      @transport.call(method, uri, headers, body && JSON.generate(body))
    end
  end
end
