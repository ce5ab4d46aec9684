# frozen_string_literal: true

# What every test file loads: the SDK, minitest, a real IdentSphere shared by the tests that need no
# settings of their own, and the check that the SDK is warning-free under `ruby -w`.

# Warnings the SDK's own files cause fail the run (Rakefile runs `ruby -w`); Debian's gems may warn.
SDK_LIB = File.expand_path("../lib", __dir__)
SDK_WARNINGS = []
module Warning
  def self.warn(message, **)
    SDK_WARNINGS << message if message.include?(SDK_LIB)
    super
  end
end

require "minitest/autorun"
require "identsphere"
require "identsphere/rack"
require_relative "support/identsphere_server"
require_relative "support/helpers"
require_relative "support/rack_server"

Minitest.after_run do
  IdentSphereTest.stop_shared_server
  unless SDK_WARNINGS.empty?
    warn "the SDK is not warning-free under ruby -w:\n#{SDK_WARNINGS.join}"
    exit 1
  end
end
