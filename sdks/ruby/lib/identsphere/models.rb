# frozen_string_literal: true

module IdentSphere
  # The API's answers as Ruby objects: Structs built from the JSON, keeping the fields this version knows
  # (a newer server may add fields; they are ignored rather than refused). Tokens never appear in
  # #inspect, so an answer that ends up in a log line leaks nothing.
  module Model
    # `struct` built from the JSON object `json`; `nested` maps a member to the Model of its value (an
    # Array of them when the value is an array).
    def self.build(struct, json, nested = {})
      return nil if json.nil?

      values = struct.members.to_h { |member| [member, convert(json[member.to_s], nested[member])] }
      struct.new(**values).freeze
    end

    def self.convert(value, model)
      return value unless model && value

      value.is_a?(Array) ? value.map { |item| model.from_json(item) } : model.from_json(value)
    end
    private_class_method :convert

    # Adds `from_json` to a Struct class.
    module Buildable
      def from_json(json)
        Model.build(self, json, respond_to?(:nested) ? nested : {})
      end
    end

    # `#inspect` that shows every member but the secret ones.
    module Redacted
      def inspect
        shown = each_pair.map do |name, value|
          "#{name}=#{self.class.secrets.include?(name) && value ? '[redacted]' : value.inspect}"
        end
        "#<#{self.class.name} #{shown.join(', ')}>"
      end
      alias to_s inspect

      # `pp` prints Structs member by member, not through #inspect.
      def pretty_print(printer) = printer.text(inspect)
    end
  end

  # The user, as token and session answers show it.
  User = Struct.new(:id, :email, :email_verified, :display_name, :created_at, keyword_init: true) do
    extend Model::Buildable
  end

  # A session family: one sign-in and its refreshes, in one organization. `aal` is `"aal1"` or `"aal2"`,
  # `auth_time` Unix seconds.
  Session = Struct.new(:id, :organization_id, :aal, :auth_method, :auth_time, :expires_at, keyword_init: true) do
    extend Model::Buildable
  end

  # The organization of a session, with the user's `role` in it.
  Organization = Struct.new(:id, :slug, :name, :role, keyword_init: true) do
    extend Model::Buildable
  end

  # At a sign-up into an organization that takes the address's domain: the organization joined once the
  # address is verified.
  PendingOrganization = Struct.new(:id, :slug, :name, :joins_when, keyword_init: true) do
    extend Model::Buildable
  end

  # A second factor the user has enrolled (`type`: `"totp"` or `"passkey"`).
  Factor = Struct.new(:type, :confirmed_at, keyword_init: true) do
    extend Model::Buildable
  end

  # A completed sign-in, refresh or step-up: the token pair, the user and the session.
  # `recovery_codes` only when confirming a second factor.
  TokenResponse = Struct.new(:access_token, :refresh_token, :token_type, :expires_in, :user, :session,
                             :pending_organization, :recovery_codes, keyword_init: true) do
    extend Model::Buildable
    include Model::Redacted

    def self.nested = { user: User, session: Session, pending_organization: PendingOrganization }
    def self.secrets = %i[access_token refresh_token recovery_codes]

    # A completed sign-in: false. See MfaRequired.
    def mfa_required? = false
  end

  # The other outcome of `login` (and `register` into an organization that requires a second factor): the
  # password was right and a second factor is due. Complete it with Client#verify_mfa and `mfa_token`.
  # `enrollment_required`: the user has no factor yet and must enroll one with the mfa token.
  MfaRequired = Struct.new(:mfa_token, :factors, :enrollment_required, keyword_init: true) do
    extend Model::Buildable
    include Model::Redacted

    def self.secrets = %i[mfa_token]

    def mfa_required? = true
  end

  # What IdentSphere says of the session of an access token, now (Client#session).
  SessionInfo = Struct.new(:user, :session, :organization, :factors, :recovery_codes_left, keyword_init: true) do
    extend Model::Buildable

    def self.nested = { user: User, session: Session, organization: Organization, factors: Factor }
  end
end
