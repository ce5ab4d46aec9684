# frozen_string_literal: true

module IdentSphere
  # The verified claims of an access token, as the integration page lists them. `sub`, `exp`, `iat` and
  # `typ` are always there; the others may be nil (a token from a newer or older server may lack them).
  # Times are Unix seconds; `aal` is `"aal1"` or `"aal2"`; `auth_method` `"password"`, `"passkey"` or
  # `"social_oauth"`.
  Claims = Struct.new(:sub, :org, :iss, :exp, :iat, :typ, :email, :jti, :sid, :aal, :auth_time, :auth_method,
                      keyword_init: true) do
    # The claims of a token's decoded payload (unknown claims are left out).
    def self.from_payload(payload)
      new(**members.to_h { |name| [name, payload[name.to_s]] }).freeze
    end

    # Whether a second factor was verified in this session.
    def aal2? = aal == "aal2"
  end
end
