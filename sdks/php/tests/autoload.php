<?php

declare(strict_types=1);

// Autoloading without Composer, which cannot fetch from Packagist here: the SDK and the tests by PSR-4 as
// composer.json maps them, the two PSR-15 interfaces Debian lacks (psr/README.md), and Debian's PSR-16
// and Nyholm PSR-7/PSR-17 packages from the include path (/usr/share/php). The tests' front controllers
// for `php -S` load it too.
spl_autoload_register(static function (string $class): void {
    $roots = [
        'IdentSphere\\Tests\\' => __DIR__ . '/',
        'IdentSphere\\' => dirname(__DIR__) . '/src/',
        'Psr\\Http\\Server\\' => __DIR__ . '/psr/Psr/Http/Server/',
    ];
    foreach ($roots as $prefix => $directory) {
        if (str_starts_with($class, $prefix)) {
            $file = $directory . str_replace('\\', '/', substr($class, strlen($prefix))) . '.php';
            if (is_file($file)) {
                require $file;
            }
            return;
        }
    }
});
require_once 'Psr/SimpleCache/autoload.php';
require_once 'Nyholm/Psr7/autoload.php';
