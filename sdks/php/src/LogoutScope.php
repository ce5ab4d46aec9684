<?php

declare(strict_types=1);

namespace IdentSphere;

/** Which sessions a logout ends. */
enum LogoutScope: string
{
    /** This session. */
    case Local = 'local';
    /** Every other session of the user. */
    case Others = 'others';
    /** Every session of the user. */
    case Global = 'global';
}
