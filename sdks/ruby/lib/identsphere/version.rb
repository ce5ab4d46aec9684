# frozen_string_literal: true

module IdentSphere
  VERSION = "0.1.0"
end
