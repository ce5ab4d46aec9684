<?php

declare(strict_types=1);

namespace IdentSphere\Tests;

use IdentSphere\Client;
use IdentSphere\Http\CurlTransport;
use IdentSphere\Http\Response;
use IdentSphere\Http\Transport;
use IdentSphere\IdentSphereException;
use IdentSphere\LogoutScope;
use IdentSphere\Model\MfaRequired;
use IdentSphere\Model\TokenResponse;
use IdentSphere\Tests\Support\IdentSphereTestCase;
use IdentSphere\Verifier;

final class ClientTest extends IdentSphereTestCase
{
    public function testRegisterAnswersWithATypedTokenResponseThatPrintsNoToken(): void
    {
        $email = self::uniqueEmail();
        $tokens = self::client()->register($email, self::PASSWORD, displayName: 'Ada');

        self::assertInstanceOf(TokenResponse::class, $tokens);
        self::assertFalse($tokens->mfaRequired());
        self::assertSame(['Bearer', $email, 'Ada', false], [$tokens->tokenType, $tokens->user->email, $tokens->user->displayName, $tokens->user->emailVerified]);
        self::assertSame(['aal1', 'password'], [$tokens->session->aal, $tokens->session->authMethod]);
        self::assertGreaterThan(0, $tokens->expiresIn);
        self::assertSame($tokens->user->id, self::part($tokens->accessToken, 1)['sub']);
        ob_start();
        var_dump($tokens);
        foreach ([print_r($tokens, true), ob_get_clean()] as $printed) {
            self::assertStringNotContainsString($tokens->accessToken, $printed);
            self::assertStringNotContainsString($tokens->refreshToken, $printed);
        }
    }

    public function testLoginSessionRefreshAndLogoutFollowOneSessionFamily(): void
    {
        $email = self::signUp()->user->email;
        $signedIn = self::client()->login($email, self::PASSWORD);
        $info = self::client()->session($signedIn->accessToken);
        self::assertSame([$email, $signedIn->session->id, 'owner', [], 0],
            [$info->user->email, $info->session->id, $info->organization->role, $info->factors, $info->recoveryCodesLeft]);

        $refreshed = self::client()->refresh($signedIn->refreshToken);
        self::assertSame($signedIn->session->id, $refreshed->session->id);
        self::assertNotSame($signedIn->refreshToken, $refreshed->refreshToken);

        self::client()->logout($refreshed->accessToken);
        self::assertRefused(401, 'token_revoked', fn () => self::client()->session($refreshed->accessToken));
    }

    public function testLogoutScopesEndThisSessionOthersOrAll(): void
    {
        $email = self::signUp()->user->email;
        $login = fn () => self::client()->login($email, self::PASSWORD);
        $live = function (TokenResponse $tokens): bool {
            try {
                self::client()->session($tokens->accessToken);
                return true;
            } catch (IdentSphereException) {
                return false;
            }
        };
        $sessions = [$login(), $login(), $login(), $login()];
        self::client()->logout($sessions[0]->accessToken, scope: LogoutScope::Others);
        self::assertSame([true, false, false, false], array_map($live, $sessions));
        $sessions = [$sessions[0], $login(), $login(), $login()];
        self::client()->logout($sessions[1]->accessToken, scope: LogoutScope::Global);
        self::assertSame([false, false, false, false], array_map($live, $sessions));

        $expiredAccess = $login();
        self::client()->logout(refreshToken: $expiredAccess->refreshToken);
        self::assertFalse($live($expiredAccess), 'a logout by refresh token ends its session');
    }

    public function testEveryRefusalIsAnExceptionWithTheCatalogCodeAndTheRequestId(): void
    {
        $client = self::client();
        [$alice, $bob] = [self::signUp(), self::signUp()];
        $cases = [
            'register: taken' => [409, 'email_taken', null, fn () => $client->register($alice->user->email, self::PASSWORD)],
            'register: weak password' => [422, 'weak_password', 'password', fn () => $client->register(self::uniqueEmail(), 'password123')],
            'register: invalid email' => [422, 'invalid_email', 'email', fn () => $client->register('not an email', self::PASSWORD)],
            'register: blank organization' => [400, 'invalid_request', 'organization', fn () => $client->register(self::uniqueEmail(), self::PASSWORD, organization: ' ')],
            'register: unknown organization' => [404, 'organization_not_found', null, fn () => $client->register(self::uniqueEmail(), self::PASSWORD, organization: 'no-such-org')],
            'register: closed organization' => [403, 'signup_not_allowed', null, fn () => $client->register(self::uniqueEmail(), self::PASSWORD, organization: $alice->session->organizationId)],
            'login: wrong password' => [401, 'invalid_credentials', null, fn () => $client->login($alice->user->email, 'wrong horse battery staple')],
            "login: another user's organization" => [403, 'not_a_member', null, fn () => $client->login($alice->user->email, self::PASSWORD, $bob->session->organizationId)],
            'refresh: no token' => [401, 'token_missing', null, fn () => $client->refresh(null)],
            'refresh: an access token' => [401, 'token_invalid', null, fn () => $client->refresh($alice->accessToken)],
            'logout: no credential' => [401, 'token_missing', null, fn () => $client->logout()],
            'session: a refresh token' => [401, 'token_invalid', null, fn () => $client->session($alice->refreshToken)],
            'verify mfa: not an mfa token' => [401, 'token_invalid', null, fn () => $client->verifyMfa('123456', mfaToken: $alice->accessToken)],
            'forgot password: invalid email' => [422, 'invalid_email', 'email', fn () => $client->forgotPassword('nobody')],
            'reset password: unknown link' => [400, 'link_invalid', null, fn () => $client->resetPassword(str_repeat('x', 43), 'a new passphrase for me')],
            'change password: wrong current one' => [401, 'invalid_credentials', null, fn () => $client->changePassword($bob->accessToken, 'wrong horse battery staple', 'a new passphrase for me')],
            'verify email: unknown link' => [400, 'link_invalid', null, fn () => $client->verifyEmail(str_repeat('x', 43))],
        ];
        foreach ($cases as $name => [$status, $code, $param, $call]) {
            $error = self::assertRefused($status, $code, $call);
            self::assertMatchesRegularExpression('/^[0-9a-f-]{36}$/', (string) $error->requestId, $name);
            self::assertSame($status, $error->getCode(), $name);
            self::assertStringContainsString($code, (string) $error, $name);
            if ($param !== null) {
                self::assertSame($param, $error->param, $name);
            }
        }
    }

    public function testAReusedRefreshTokenRevokesTheFamily(): void
    {
        $on = $this->ownServer(['IDENTSPHERE_REFRESH_REUSE_GRACE' => '0']);
        $first = self::signUp($on);
        $second = self::client($on)->refresh($first->refreshToken);
        self::assertRefused(401, 'refresh_token_reused', fn () => self::client($on)->refresh($first->refreshToken));
        self::assertRefused(401, 'token_revoked', fn () => self::client($on)->refresh($second->refreshToken));
    }

    public function testASecondFactorIsAnOutcomeOfLoginAndVerifyMfaCompletesOrStepsUp(): void
    {
        $owner = self::signUp();
        $login = fn () => self::client()->login($owner->user->email, self::PASSWORD);
        // Two sessions signed in before the factor exists: they stay aal1.
        [$stepUp, $stayAal1] = [$login(), $login()];
        [$secret, $confirmed] = self::enrollTotp($owner);
        $codes = $confirmed['recovery_codes'];
        self::assertCount(10, $codes);

        $pending = $login();
        self::assertInstanceOf(MfaRequired::class, $pending);
        self::assertTrue($pending->mfaRequired());
        self::assertSame([['totp'], false], [$pending->factors, $pending->enrollmentRequired]);
        self::assertStringNotContainsString($pending->mfaToken, print_r($pending, true));
        self::assertRefused(401, 'mfa_invalid_code', fn () => self::client()->verifyMfa('000000', mfaToken: $pending->mfaToken));
        // The confirmation spent this 30-second step's code: the next step's is within the ±1 step accepted.
        $signedIn = self::client()->verifyMfa(self::totp($secret, time() + 30), mfaToken: $pending->mfaToken);
        self::assertSame(['aal2', 'aal2'], [$signedIn->session->aal, self::part($signedIn->accessToken, 1)['aal']]);
        // A recovery code completes a sign-in too.
        self::assertSame('aal2', self::client()->verifyMfa($codes[0], mfaToken: $login()->mfaToken)->session->aal);

        // Step-up: a session from before the factor, with its refresh token and a recovery code.
        $raised = self::client()->verifyMfa($codes[1], accessToken: $stepUp->accessToken, refreshToken: $stepUp->refreshToken);
        self::assertSame(['aal1', 'aal2', $stepUp->session->id], [$stepUp->session->aal, $raised->session->aal, $raised->session->id]);
        $info = self::client()->session($raised->accessToken);
        self::assertSame([8, 'totp'], [$info->recoveryCodesLeft, $info->factors[0]->type]);
        self::assertNotSame('', $info->factors[0]->confirmedAt);
        // Once the user has a factor, changing the password needs aal2.
        self::assertRefused(403, 'insufficient_aal',
            fn () => self::client()->changePassword($stayAal1->accessToken, self::PASSWORD, 'a new passphrase for me'));
    }

    public function testRefreshWithAnOrganizationSwitchesTheSession(): void
    {
        $tokens = self::signUp();
        $acme = self::createOrganization($tokens->accessToken);

        $switched = self::client()->refresh($tokens->refreshToken, $acme);
        $claims = (new Verifier(self::server()->url))->verify($switched->accessToken);
        self::assertSame([$acme, $acme, $tokens->session->id], [$switched->session->organizationId, $claims->org, $claims->sid]);
        self::assertRefused(403, 'not_a_member',
            fn () => self::client()->refresh($switched->refreshToken, self::signUp()->session->organizationId));
    }

    public function testTheAccountCallsVerifyTheEmailResetAndChangeThePassword(): void
    {
        $tokens = self::signUp();
        $email = $tokens->user->email;

        self::client()->verifyEmail(self::server()->mailedToken($email, '/verify-email'));
        self::assertTrue(self::client()->session($tokens->accessToken)->user->emailVerified);

        self::client()->forgotPassword($email);
        self::client()->forgotPassword(self::uniqueEmail()); // an unknown email gets the same answer
        $link = self::server()->mailedToken($email, '/reset-password');
        self::assertRefused(422, 'weak_password', fn () => self::client()->resetPassword($link, 'password123'));
        self::client()->resetPassword($link, 'a reset passphrase here');
        self::assertRefused(400, 'link_invalid', fn () => self::client()->resetPassword($link, 'another passphrase here'));
        self::assertRefused(401, 'token_revoked', fn () => self::client()->session($tokens->accessToken)); // a reset ends every session

        $signedIn = self::client()->login($email, 'a reset passphrase here');
        self::client()->changePassword($signedIn->accessToken, 'a reset passphrase here', 'a changed passphrase');
        self::assertInstanceOf(TokenResponse::class, self::client()->login($email, 'a changed passphrase'));
    }

    public function testWrongSecondFactorCodesAreRateLimitedWithRetryAfter(): void
    {
        $tokens = self::signUp();
        self::enrollTotp($tokens);
        $pending = self::client()->login($tokens->user->email, self::PASSWORD);
        $wrong = fn () => self::client()->verifyMfa('000000', mfaToken: $pending->mfaToken);
        for ($i = 0; $i < 5; $i++) {
            self::assertRefused(401, 'mfa_invalid_code', $wrong);
        }
        $limited = self::assertRefused(429, 'rate_limited', $wrong);
        self::assertSame('rate_limit_error', $limited->type);
        self::assertGreaterThanOrEqual(1, $limited->retryAfter);
    }

    public function testTheClientSendsItsUserAgentAndTimesOut(): void
    {
        $tokens = self::signUp();
        $sessions = self::api('GET', '/v1/auth/sessions', $tokens->accessToken)['sessions'];
        self::assertSame('identsphere-php/0.1.0 (php ' . PHP_VERSION . ')', $sessions[0]['user_agent']);

        // A server that accepts and never answers.
        $hung = stream_socket_server('tcp://127.0.0.1:0');
        $slow = new Client('http://' . stream_socket_get_name($hung, false), new CurlTransport(timeout: 0.3));
        $started = microtime(true);
        $error = self::assertRefused(0, 'network_error', fn () => $slow->login(self::uniqueEmail(), self::PASSWORD));
        self::assertSame('client_error', $error->type);
        self::assertLessThan(5, microtime(true) - $started);
        fclose($hung);
    }

    public function testAnAnswerWithoutTheEnvelopeIsUnexpectedResponse(): void
    {
        // A proxy in front of IdentSphere whose upstream is down answers with a page of its own.
        $proxy = $this->phpServer('bad_gateway', []);
        $error = self::assertRefused(502, 'unexpected_response', fn () => (new Client($proxy->url))->login(self::uniqueEmail(), self::PASSWORD));
        self::assertSame('client_error', $error->type);
    }

    public function testATransportOfYourOwnCarriesEveryCall(): void
    {
        $recording = new class () implements Transport {
            /** @var list<string> */
            public array $seen = [];
            private CurlTransport $curl;

            public function __construct()
            {
                $this->curl = new CurlTransport();
            }

            public function send(string $method, string $url, array $headers, ?string $body): Response
            {
                $this->seen[] = "$method " . parse_url($url, PHP_URL_PATH);
                return $this->curl->send($method, $url, $headers, $body);
            }
        };
        $own = new Client(self::server()->url, $recording);
        $own->session($own->register(self::uniqueEmail(), self::PASSWORD)->accessToken);
        self::assertSame(['POST /v1/auth/register', 'GET /v1/auth/session'], $recording->seen);
    }
}
