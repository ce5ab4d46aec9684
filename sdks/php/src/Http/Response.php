<?php

declare(strict_types=1);

namespace IdentSphere\Http;

/** An answer of IdentSphere, as a Transport returns it. */
final readonly class Response
{
    /**
     * @param array<string, string> $headers by lower-case name (repeated headers joined with ", ")
     */
    public function __construct(
        public int $status,
        public array $headers,
        public string $body,
    ) {
    }

    public function header(string $name): ?string
    {
        return $this->headers[strtolower($name)] ?? null;
    }
}
