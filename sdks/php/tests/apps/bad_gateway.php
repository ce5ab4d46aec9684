<?php

declare(strict_types=1);

// A proxy whose upstream is down: its own error page, no IdentSphere envelope.
http_response_code(502);
header('Content-Type: text/html');
echo '<h1>Bad Gateway</h1>';
