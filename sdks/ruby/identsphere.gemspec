# frozen_string_literal: true

require_relative "lib/identsphere/version"

Gem::Specification.new do |spec|
  spec.name = "identsphere"
  spec.version = IdentSphere::VERSION
  spec.summary = "IdentSphere's server-side SDK: REST client, local access-token verification, Rack middleware"
  spec.description = "Calls IdentSphere's REST API, verifies its RS256 access tokens locally against the JWKS " \
                     "(thread-safe key cache, revocation feed) and protects Rack apps (Rails, Sinatra, Hanami). " \
                     "Standard library only: net/http, openssl, json."
  spec.authors = ["IdentSphere"]
  spec.license = "Apache-2.0"
  spec.required_ruby_version = ">= 3.1"
  spec.files = Dir["lib/**/*.rb"] + ["README.md"]
  spec.require_paths = ["lib"]
  spec.metadata["rubygems_mfa_required"] = "true"
end
