# frozen_string_literal: true

require "test_helper"

# The SDK's own refusals and error classes against the catalog the server publishes in /openapi.json, so
# a code, status or type the SDK answers with is one IdentSphere itself would answer with.
class CatalogTest < Minitest::Test
  include IdentSphereTest

  def test_every_refusal_of_the_sdk_is_a_row_of_the_servers_catalog
    catalog = server_catalog
    IdentSphere::Error::REFUSALS.each do |code, (status, type, _message)|
      assert_includes catalog.fetch(code, []), [status, type], "#{code} as the SDK answers it"
    end
  end

  def test_every_type_of_the_catalog_has_its_error_class
    types = openapi.dig("components", "schemas", "Error", "properties", "type", "enum")
    types.each { |type| refute_equal IdentSphere::Error, IdentSphere::Error::CLASSES.fetch(type), type }
  end

  private

  def openapi = @openapi ||= JSON.parse(Net::HTTP.get(URI("#{server.url}/openapi.json")))

  # code => [[status, type], ...] from every error response of every route.
  def server_catalog
    catalog = Hash.new { |hash, code| hash[code] = [] }
    openapi["paths"].each_value do |operations|
      operations.each_value do |operation|
        operation.fetch("responses", {}).each do |status, response|
          error_schemas(response).each do |error|
            error.dig("code", "enum").product(error.dig("type", "enum")).each do |code, type|
              catalog[code] |= [[status.to_i, type]]
            end
          end
        end
      end
    end
    catalog
  end

  # The `error` properties of the envelope schemas in a response (`allOf` of the envelope and the codes).
  def error_schemas(node)
    case node
    when Hash
      own = node.dig("properties", "error", "properties")
      (own&.key?("code") ? [own] : []) + node.values.flat_map { |value| error_schemas(value) }
    when Array then node.flat_map { |value| error_schemas(value) }
    else []
    end
  end
end
