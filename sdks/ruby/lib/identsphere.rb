# frozen_string_literal: true

# IdentSphere's server-side SDK for Ruby, on the standard library alone (net/http, openssl, json):
#
# - IdentSphere::Client: the REST API (register, login, refresh and switching, logout, session,
#   verify_mfa, the account calls); refusals raise IdentSphere::Error with the catalog's code.
# - IdentSphere::Verifier: access tokens checked locally against the JWKS, thread-safe.
# - IdentSphere::RevocationFeed: revoked sessions and tokens, polled in the background.
# - IdentSphere::Rack::Middleware (`require "identsphere/rack"`): claims at env["identsphere.claims"].
module IdentSphere
end

require_relative "identsphere/version"
require_relative "identsphere/error"
require_relative "identsphere/http"
require_relative "identsphere/models"
require_relative "identsphere/client"
require_relative "identsphere/claims"
require_relative "identsphere/key_cache"
require_relative "identsphere/revocation_feed"
require_relative "identsphere/verifier"
