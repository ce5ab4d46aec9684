<?php

declare(strict_types=1);

namespace IdentSphere\Tests;

use IdentSphere\IdentSphereException;
use IdentSphere\Tests\Support\IdentSphereTestCase;

/**
 * The SDK's own refusals against the catalog the server publishes in /openapi.json, so a code, status or
 * type the SDK answers with is one IdentSphere itself would answer with.
 */
final class CatalogTest extends IdentSphereTestCase
{
    public function testEveryRefusalOfTheSdkIsARowOfTheServersCatalog(): void
    {
        $openapi = json_decode((string) file_get_contents(self::server()->url . '/openapi.json'), true);
        $catalog = [];
        foreach ($openapi['paths'] as $operations) {
            foreach ($operations as $operation) {
                foreach ($operation['responses'] ?? [] as $status => $response) {
                    foreach (self::errorSchemas($response) as $error) {
                        foreach ($error['code']['enum'] as $code) {
                            foreach ($error['type']['enum'] as $type) {
                                $catalog[$code][] = [(int) $status, $type];
                            }
                        }
                    }
                }
            }
        }
        foreach (IdentSphereException::REFUSALS as $code => [$status, $type]) {
            self::assertContains([$status, $type], $catalog[$code] ?? [], "$code as the SDK answers it");
        }
    }

    /**
     * The `error` properties of the envelope schemas in a response (`allOf` of the envelope and the codes).
     *
     * @return list<array<string, mixed>>
     */
    private static function errorSchemas(mixed $node): array
    {
        if (!is_array($node)) {
            return [];
        }
        $own = $node['properties']['error']['properties'] ?? null;
        $found = is_array($own) && isset($own['code']) ? [$own] : [];
        foreach ($node as $value) {
            array_push($found, ...self::errorSchemas($value));
        }
        return $found;
    }
}
