<?php

declare(strict_types=1);

// A plain PHP page for the tests, served by `php -S`: the guard reads $_SERVER and $_COOKIE, refuses and
// ends the request, or the page answers with the claims (`null` for none). /aal2 requires a second factor,
// /maybe is optional.
require_once __DIR__ . '/../autoload.php';

use IdentSphere\Guard;

$verifier = require __DIR__ . '/verifier.php';
$path = parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH);
$claims = (new Guard($verifier, requireAal2: $path === '/aal2', optional: $path === '/maybe'))->protect();

header('Content-Type: application/json');
echo json_encode($claims?->toArray());
