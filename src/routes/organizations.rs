//! `/v1/organizations*`: create, list, read and update organizations; list, re-role and remove members.
//! And `/v1/auth/sessions*`: the user's session list.
//!
//! Every route needs an access token (`Principal`). Reading needs membership; updating and managing
//! members needs `admin` (owners for anything touching an owner, and to disable). An organization the user
//! is not a member of is `organization_not_found`, like one that does not exist.

use actix_web::{HttpResponse, web};
use identsphere_actors::AuthMethod;
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::domain::Email;
use crate::domain::{OrgRef, Role};
use crate::error::ApiError;
use crate::http::json::ApiJson;
use crate::routes::auth::{UserJson, display_text, display_text_schema};
use crate::routes::{errors, string_enum};
use crate::service::{Caller, NewOrganization, Principal};
use crate::startup::AppState;
use crate::store::{
    Invitation, MembershipChange, OrgPolicy, OrgRateLimits, OrgUpdate, Organization, PolicyUpdate, SessionInfo,
    SignupMode,
};

/// Longest list of sign-up domains kept.
const MAX_DOMAINS: usize = 100;

/// A new organization. Unknown fields are refused.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"name": "Acme Corp", "slug": "acme"})))]
pub(crate) struct CreateBody {
    /// Display name: trimmed, 1 to 100 characters without control characters.
    #[schema(schema_with = required_name_schema)]
    name: String,
    /// 1 to 63 of `a-z`, `0-9` and `-`, not starting or ending with `-`; drawn from the name when absent.
    #[serde(default)]
    #[schema(schema_with = slug_schema)]
    slug: Option<String>,
}

/// Who may register straight into the organization.
#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct SignupJson {
    /// `closed`, `invite_only`, `open`, or `domains` (open to addresses at `domains`).
    #[schema(schema_with = signup_mode_schema)]
    mode: String,
    /// Lower-case domains, for `domains` only.
    #[serde(default)]
    domains: Vec<String>,
}

/// What to change. Unknown fields are refused; absent fields stay as they are.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"name": "Acme Inc", "signup": {"mode": "domains", "domains": ["acme.com"]}})))]
pub(crate) struct UpdateBody {
    /// New display name.
    #[serde(default)]
    #[schema(schema_with = optional_name_schema)]
    name: Option<String>,
    /// New slug; the id stays, so references by id keep working.
    #[serde(default)]
    #[schema(schema_with = slug_schema)]
    slug: Option<String>,
    /// New sign-up policy.
    #[serde(default)]
    signup: Option<SignupJson>,
    /// Disable (`true`, owners only: its sessions stop refreshing, nobody signs in) or enable it.
    #[serde(default)]
    disabled: Option<bool>,
    /// Policy fields to change (owners only); absent fields stay as they are.
    #[serde(default)]
    policy: Option<PolicyBody>,
}

/// Policy fields to change. Unknown fields are refused.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"mfa_required": true, "access_token_ttl": 300})))]
pub(crate) struct PolicyBody {
    /// Members must sign in with a second factor; members without one enroll it at sign-in.
    #[serde(default)]
    mfa_required: Option<bool>,
    /// The sign-in methods allowed (at least one): `password`, `passkey`, `social_oauth`.
    #[serde(default)]
    #[schema(schema_with = auth_methods_schema)]
    auth_methods: Option<Vec<String>>,
    /// Access-token lifetime in seconds, from 60 to the server's; `null` for the server's.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u32>, minimum = 60)]
    access_token_ttl: Option<Option<u32>>,
    /// Absolute session lifetime in seconds, from 300 to the server's; `null` for the server's.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u32>, minimum = 300)]
    refresh_token_ttl: Option<Option<u32>>,
    /// Limits counted on top of the server's for requests naming the organization; replaces the previous ones.
    #[serde(default)]
    #[schema(schema_with = rate_limits_schema)]
    rate_limits: Option<OrgRateLimits>,
}

/// A field that may be `null`: present (`Some`, with `null` as `None`) or absent (`None`, by `default`).
fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(de: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(de).map(Some)
}

/// The schema of `OrgRateLimits` (serialized by serde as `{"signin_ip": {"count", "period"}, …}`).
fn rate_limits_schema() -> utoipa::openapi::Object {
    use utoipa::openapi::schema::AdditionalProperties;
    use utoipa::openapi::{ObjectBuilder, Type};
    let positive = || ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(1)).build();
    let rate = |description: &str| {
        ObjectBuilder::new()
            .description(Some(format!("{description}: at most `count` per `period` seconds")))
            .property("count", positive())
            .property("period", positive())
            .required("count")
            .required("period")
            .additional_properties(Some(AdditionalProperties::FreeForm(false)))
            .build()
    };
    ObjectBuilder::new()
        .description(Some("Limits counted on top of the server's, for requests naming the organization"))
        .property("signin_ip", rate("Sign-in attempts per client address"))
        .property("register_ip", rate("Registrations per client address"))
        .additional_properties(Some(AdditionalProperties::FreeForm(false)))
        .build()
}

/// An organization's policy beyond sign-up, as shown.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct PolicyJson {
    mfa_required: bool,
    #[schema(schema_with = auth_methods_schema)]
    auth_methods: Vec<&'static str>,
    /// Seconds; `null`: the server's.
    #[schema(required = true)]
    access_token_ttl: Option<i64>,
    /// Seconds; `null`: the server's.
    #[schema(required = true)]
    refresh_token_ttl: Option<i64>,
    #[schema(schema_with = rate_limits_schema)]
    rate_limits: OrgRateLimits,
}

impl PolicyJson {
    fn new(policy: &OrgPolicy) -> Self {
        Self {
            mfa_required: policy.sessions.mfa_required,
            auth_methods: policy.sessions.auth_methods.iter().map(|m| m.as_str()).collect(),
            access_token_ttl: policy.sessions.access_ttl.map(|t| t.whole_seconds()),
            refresh_token_ttl: policy.refresh_ttl.map(|t| t.whole_seconds()),
            rate_limits: policy.rate_limits,
        }
    }
}

/// Who to invite, with which role. Unknown fields are refused.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"email": "grace@example.com", "role": "member"})))]
pub(crate) struct InviteBody {
    /// Trimmed, then validated (`invalid_email`); only the account with this email may accept.
    #[schema(format = Email)]
    email: String,
    #[schema(schema_with = role_schema)]
    role: String,
}

/// An invitation's token. Unknown fields are refused.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AcceptBody {
    /// The `token` query parameter of the invitation link.
    #[schema(max_length = 128)]
    token: String,
}

/// A waiting invitation.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct InvitationJson<'a> {
    id: Uuid,
    organization_id: Uuid,
    email: &'a str,
    #[schema(schema_with = role_schema)]
    role: &'static str,
    #[schema(required = true)]
    invited_by: Option<Uuid>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    expires_at: OffsetDateTime,
}

impl<'a> From<&'a Invitation> for InvitationJson<'a> {
    fn from(i: &'a Invitation) -> Self {
        Self {
            id: i.id,
            organization_id: i.org_id,
            email: &i.email,
            role: i.role.as_str(),
            invited_by: i.invited_by,
            created_at: i.created_at,
            expires_at: i.expires_at,
        }
    }
}

/// The organization's waiting invitations, oldest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct InvitationList<'a> {
    invitations: Vec<InvitationJson<'a>>,
}

/// A member's new role. Unknown fields are refused.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RoleBody {
    #[schema(schema_with = role_schema)]
    role: String,
}

/// An organization, with the caller's role in it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = OrganizationDetail)]
struct OrgJson<'a> {
    id: Uuid,
    slug: &'a str,
    name: &'a str,
    /// The caller's role.
    #[schema(schema_with = role_schema)]
    role: &'static str,
    disabled: bool,
    signup: SignupJson,
    policy: PolicyJson,
}

impl<'a> OrgJson<'a> {
    fn new(org: &'a Organization, role: Role) -> Self {
        let (mode, domains) = org.signup.columns();
        Self {
            id: org.id,
            slug: &org.slug,
            name: &org.name,
            role: role.as_str(),
            disabled: org.disabled,
            signup: SignupJson { mode: mode.to_owned(), domains },
            policy: PolicyJson::new(&org.policy),
        }
    }
}

/// The caller's organizations.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct OrgList<'a> {
    organizations: Vec<OrgJson<'a>>,
}

/// A member.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct MemberJson<'a> {
    user: UserJson<'a>,
    #[schema(schema_with = role_schema)]
    role: &'static str,
    #[serde(with = "time::serde::rfc3339")]
    joined_at: OffsetDateTime,
}

/// The members, owners first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct MemberList<'a> {
    members: Vec<MemberJson<'a>>,
}

/// One of the caller's sessions.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct SessionItem<'a> {
    /// Session family id (`sid`).
    id: Uuid,
    organization_id: Uuid,
    /// `aal1` or `aal2`.
    aal: &'static str,
    /// `password`, `passkey` or `social_oauth`.
    auth_method: &'static str,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    /// The last refresh.
    #[serde(with = "time::serde::rfc3339")]
    last_used_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    expires_at: OffsetDateTime,
    /// The `User-Agent` the sign-in came with.
    #[schema(required = true)]
    user_agent: Option<&'a str>,
    /// The client address the sign-in came from.
    #[schema(required = true)]
    ip: Option<&'a str>,
    /// The session of the access token that asked.
    current: bool,
}

impl<'a> SessionItem<'a> {
    /// `s` as listed, `current` when it is the session of the access token that asked.
    pub(crate) fn new(s: &'a SessionInfo, current: Option<Uuid>) -> Self {
        Self {
            id: s.sid,
            organization_id: s.org_id,
            aal: s.aal.as_str(),
            auth_method: s.auth_method.as_str(),
            created_at: s.created_at,
            last_used_at: s.last_used_at,
            expires_at: s.expires_at,
            user_agent: s.user_agent.as_deref(),
            ip: s.ip.as_deref(),
            current: Some(s.sid) == current,
        }
    }
}

/// Live sessions, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct SessionList<'a> {
    pub(crate) sessions: Vec<SessionItem<'a>>,
}

pub(crate) fn required_name_schema() -> utoipa::openapi::Object {
    display_text_schema(false)
}

fn optional_name_schema() -> utoipa::openapi::Object {
    display_text_schema(true)
}

fn slug_schema() -> utoipa::openapi::Object {
    use utoipa::openapi::{ObjectBuilder, Type, schema::SchemaType};
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .pattern(Some(SLUG_PATTERN))
        .build()
}

fn signup_mode_schema() -> utoipa::openapi::Object {
    string_enum(["closed", "invite_only", "open", "domains"])
}

pub(crate) fn role_schema() -> utoipa::openapi::Object {
    string_enum([Role::Owner, Role::Admin, Role::Member].map(Role::as_str))
}

/// What `slug` accepts.
const SLUG_PATTERN: &str = "^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$";

/// A slug as typed: 1 to 63 of `a-z0-9-`, not starting or ending with `-`, and not shaped like an id.
fn slug(raw: String) -> Result<String, ApiError> {
    let bytes = raw.as_bytes();
    let shaped = (1..=63).contains(&bytes.len())
        && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes.first() != Some(&b'-')
        && bytes.last() != Some(&b'-');
    if !shaped || Uuid::parse_str(&raw).is_ok() {
        return Err(ApiError::invalid_field(
            "slug",
            "slug must be 1 to 63 of a-z, 0-9 and -, not starting or ending with -",
        ));
    }
    Ok(raw)
}

fn signup(json: SignupJson) -> Result<SignupMode, ApiError> {
    let bad = |message: &str| ApiError::invalid_field("signup", message);
    let domains: Vec<String> = json.domains.iter().map(|d| d.trim().to_ascii_lowercase()).collect();
    if json.mode != "domains" && !domains.is_empty() {
        return Err(bad("domains are only for mode `domains`"));
    }
    let valid = |d: &String| email_address::EmailAddress::is_valid(&format!("a@{d}"));
    if domains.len() > MAX_DOMAINS || !domains.iter().all(valid) {
        return Err(bad("domains must be at most 100 valid domain names"));
    }
    match json.mode.as_str() {
        "domains" if domains.is_empty() => Err(bad("mode `domains` needs at least one domain")),
        mode => SignupMode::from_columns(mode, domains)
            .ok_or_else(|| bad("mode must be closed, invite_only, open or domains")),
    }
}

fn auth_methods_schema() -> utoipa::openapi::schema::Array {
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(string_enum(
            [AuthMethod::Password, AuthMethod::Passkey, AuthMethod::SocialOauth].map(AuthMethod::as_str),
        ))
        .min_items(Some(1))
        .unique_items(true)
        .build()
}

/// The policy change asked for, within the server's bounds: lifetimes between their floor and the
/// server's own (an organization may shorten them, not lengthen them).
fn policy(body: PolicyBody, server_access: Duration, server_refresh: Duration) -> Result<PolicyUpdate, ApiError> {
    let methods = body
        .auth_methods
        .map(|names| {
            let bad = || {
                ApiError::invalid_field(
                    "policy.auth_methods",
                    "auth_methods must be a non-empty list of \
                                                                        password, passkey and social_oauth",
                )
            };
            let mut methods =
                names.iter().map(|n| AuthMethod::parse(n.trim())).collect::<Option<Vec<_>>>().ok_or_else(bad)?;
            methods.sort_by_key(|m| m.as_str());
            methods.dedup();
            if methods.is_empty() { Err(bad()) } else { Ok(methods) }
        })
        .transpose()?;
    let ttl = |field: &'static str, value: Option<Option<u32>>, floor: i64, ceiling: Duration| {
        value
            .map(|seconds| {
                seconds
                    .map(|s| {
                        let s = i64::from(s);
                        if (floor..=ceiling.whole_seconds()).contains(&s) {
                            Ok(Duration::seconds(s))
                        } else {
                            Err(ApiError::invalid_field(
                                field,
                                format!("{field} must be from {floor} to {} seconds", ceiling.whole_seconds()),
                            ))
                        }
                    })
                    .transpose()
            })
            .transpose()
    };
    Ok(PolicyUpdate {
        mfa_required: body.mfa_required,
        auth_methods: methods,
        access_ttl: ttl("policy.access_token_ttl", body.access_token_ttl, 60, server_access)?,
        refresh_ttl: ttl("policy.refresh_token_ttl", body.refresh_token_ttl, 300, server_refresh)?,
        rate_limits: body.rate_limits,
    })
}

pub(crate) fn role(raw: &str) -> Result<Role, ApiError> {
    Role::parse(raw).ok_or_else(|| ApiError::invalid_field("role", "role must be owner, admin or member"))
}

pub(crate) fn path_org(raw: &str) -> Result<OrgRef, ApiError> {
    OrgRef::parse(raw).ok_or(ApiError::OrganizationNotFound)
}

pub(crate) fn path_uuid(raw: &str, missing: ApiError) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw.trim()).map_err(|_| missing)
}

/// The errors of routes on one organization: a user acts from a session in it, under its policy.
pub(crate) fn org_errors() -> Vec<ApiError> {
    let mut all = errors::live_session();
    all.extend([
        ApiError::OrganizationNotFound,
        ApiError::WrongOrganization,
        ApiError::InsufficientAal,
        ApiError::AuthMethodNotAllowed,
    ]);
    all
}

/// The errors of `create_organization`.
pub(crate) fn create_errors() -> Vec<ApiError> {
    let mut all = errors::live_session_unsafe();
    all.extend(errors::json_body());
    all.push(ApiError::SlugTaken);
    all
}

/// `POST /v1/organizations` — requires an access token. Creates an organization; the caller is its owner.
#[utoipa::path(
    post,
    path = "/v1/organizations",
    tag = "organizations",
    summary = "Create an organization",
    description = "The caller becomes its owner. Sign-up starts `closed`. Without `slug`, one is drawn from the name.",
    request_body = CreateBody,
    security(("bearer" = []), ("access_cookie" = [])),
    responses((status = 201, description = "Created.", body = OrgJson)),
)]
pub(crate) async fn create_organization(
    state: web::Data<AppState>,
    principal: Principal,
    body: ApiJson<CreateBody>,
) -> Result<HttpResponse, ApiError> {
    let CreateBody { name, slug: raw_slug } = body.0;
    let name =
        display_text("name", Some(name))?.ok_or_else(|| ApiError::invalid_field("name", "name must not be blank"))?;
    let new = NewOrganization { name, slug: raw_slug.map(slug).transpose()? };
    let org = state.service.create_org(&principal, new).await?;
    Ok(HttpResponse::Created().json(OrgJson::new(&org, Role::Owner)))
}

/// The errors of `list_organizations`.
pub(crate) fn list_errors() -> Vec<ApiError> {
    errors::live_session()
}

/// `GET /v1/organizations` — requires an access token. The caller's organizations.
#[utoipa::path(
    get,
    path = "/v1/organizations",
    tag = "organizations",
    summary = "List my organizations",
    security(("bearer" = []), ("access_cookie" = [])),
    responses((status = 200, description = "The caller's organizations, by name, with the caller's role.", body = OrgList)),
)]
pub(crate) async fn list_organizations(
    state: web::Data<AppState>,
    principal: Principal,
) -> Result<HttpResponse, ApiError> {
    let orgs = state.service.my_orgs(&principal).await?;
    let organizations = orgs.iter().map(|(org, role)| OrgJson::new(org, *role)).collect();
    Ok(HttpResponse::Ok().json(OrgList { organizations }))
}

/// The errors of `get_organization`.
pub(crate) fn read_errors() -> Vec<ApiError> {
    org_errors()
}

/// `GET /v1/organizations/{org}` — requires membership.
#[utoipa::path(
    get,
    path = "/v1/organizations/{org}",
    tag = "organizations",
    summary = "Read an organization",
    params(("org" = String, Path, description = "Organization id or slug")),
    security(("bearer" = []), ("access_cookie" = []), ("api_key" = [])),
    responses((status = 200, description = "The organization, with the caller's role.", body = OrgJson)),
)]
pub(crate) async fn get_organization(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (org, role) = state.service.member_org(&caller, &path_org(&path)?).await?;
    Ok(HttpResponse::Ok().json(OrgJson::new(&org, role)))
}

/// The errors of `update_organization`.
pub(crate) fn update_errors() -> Vec<ApiError> {
    let mut all = org_errors();
    all.extend(errors::json_body());
    all.extend([ApiError::CsrfRejected, ApiError::InsufficientRole, ApiError::SlugTaken]);
    all
}

/// `PATCH /v1/organizations/{org}` — requires `admin` (`owner` to disable or enable).
#[utoipa::path(
    patch,
    path = "/v1/organizations/{org}",
    tag = "organizations",
    summary = "Update an organization",
    description = "Name, slug and sign-up policy need `admin`; `disabled` needs `owner`. A disabled organization's \
                   sessions stop refreshing and nobody signs in to it. Renaming the slug keeps the id.",
    params(("org" = String, Path, description = "Organization id or slug")),
    request_body = UpdateBody,
    security(("bearer" = []), ("access_cookie" = []), ("api_key" = [])),
    responses((status = 200, description = "The organization afterwards.", body = OrgJson)),
)]
pub(crate) async fn update_organization(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: ApiJson<UpdateBody>,
) -> Result<HttpResponse, ApiError> {
    let UpdateBody { name, slug: raw_slug, signup: raw_signup, disabled, policy: raw_policy } = body.0;
    let name = match name {
        Some(name) => Some(
            display_text("name", Some(name))?
                .ok_or_else(|| ApiError::invalid_field("name", "name must not be blank"))?,
        ),
        None => None,
    };
    let update = OrgUpdate {
        name,
        slug: raw_slug.map(slug).transpose()?,
        signup: raw_signup.map(signup).transpose()?,
        disabled,
        policy: policy(raw_policy.unwrap_or_default(), state.config.access_token_ttl, state.config.refresh_token_ttl)?,
    };
    let (org, role) = state.service.update_org(&caller, &path_org(&path)?, update).await?;
    Ok(HttpResponse::Ok().json(OrgJson::new(&org, role)))
}

/// The errors of `list_members`.
pub(crate) fn members_errors() -> Vec<ApiError> {
    org_errors()
}

/// `GET /v1/organizations/{org}/members` — requires membership.
#[utoipa::path(
    get,
    path = "/v1/organizations/{org}/members",
    tag = "organizations",
    summary = "List the members",
    params(("org" = String, Path, description = "Organization id or slug")),
    security(("bearer" = []), ("access_cookie" = []), ("api_key" = [])),
    responses((status = 200, description = "The members, owners first.", body = MemberList)),
)]
pub(crate) async fn list_members(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let members = state.service.members(&caller, &path_org(&path)?).await?;
    let members = members
        .iter()
        .map(|m| MemberJson { user: (&m.user).into(), role: m.role.as_str(), joined_at: m.joined_at })
        .collect();
    Ok(HttpResponse::Ok().json(MemberList { members }))
}

/// The errors of `change_member` and `remove_member`.
pub(crate) fn member_errors() -> Vec<ApiError> {
    let mut all = org_errors();
    all.extend([ApiError::CsrfRejected, ApiError::InsufficientRole, ApiError::MemberNotFound, ApiError::LastOwner]);
    all
}

/// The errors of `change_member`.
pub(crate) fn role_errors() -> Vec<ApiError> {
    let mut all = member_errors();
    all.extend(errors::json_body());
    all
}

/// `PATCH /v1/organizations/{org}/members/{user_id}` — requires `admin`; `owner` to touch an owner or make one.
#[utoipa::path(
    patch,
    path = "/v1/organizations/{org}/members/{user_id}",
    tag = "organizations",
    summary = "Change a member's role",
    description = "The last owner cannot be demoted (`last_owner`).",
    params(("org" = String, Path, description = "Organization id or slug"),
           ("user_id" = String, Path, description = "The member's user id")),
    request_body = RoleBody,
    security(("bearer" = []), ("access_cookie" = []), ("api_key" = [])),
    responses((status = 204, description = "Changed.")),
)]
pub(crate) async fn change_member(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
    body: ApiJson<RoleBody>,
) -> Result<HttpResponse, ApiError> {
    let (org, user) = path.into_inner();
    let role = role(&body.0.role)?;
    let user = path_uuid(&user, ApiError::MemberNotFound)?;
    state.service.change_member(&caller, &path_org(&org)?, user, MembershipChange::Role(role)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `DELETE /v1/organizations/{org}/members/{user_id}` — requires `admin` (`owner` for an owner), or is the
/// member themself leaving.
#[utoipa::path(
    delete,
    path = "/v1/organizations/{org}/members/{user_id}",
    tag = "organizations",
    summary = "Remove a member, or leave",
    description = "The member's sessions in the organization end at once. The last owner cannot leave or be removed \
                   (`last_owner`).",
    params(("org" = String, Path, description = "Organization id or slug"),
           ("user_id" = String, Path, description = "The member's user id")),
    security(("bearer" = []), ("access_cookie" = []), ("api_key" = [])),
    responses((status = 204, description = "Removed.")),
)]
pub(crate) async fn remove_member(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (org, user) = path.into_inner();
    let user = path_uuid(&user, ApiError::MemberNotFound)?;
    state.service.change_member(&caller, &path_org(&org)?, user, MembershipChange::Remove).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The errors of `list_sessions`.
pub(crate) fn sessions_errors() -> Vec<ApiError> {
    errors::live_session()
}

/// `GET /v1/auth/sessions` — requires an access token. The caller's live sessions.
#[utoipa::path(
    get,
    path = "/v1/auth/sessions",
    tag = "auth",
    summary = "List my sessions",
    security(("bearer" = []), ("access_cookie" = [])),
    responses((status = 200, description = "Live sessions, newest first; `current` marks the caller's.", body = SessionList)),
)]
pub(crate) async fn list_sessions(state: web::Data<AppState>, principal: Principal) -> Result<HttpResponse, ApiError> {
    let sessions = state.service.sessions(&principal).await?;
    let current = Some(principal.claims.sid);
    let sessions = sessions.iter().map(|s| SessionItem::new(s, current)).collect();
    Ok(HttpResponse::Ok().json(SessionList { sessions }))
}

/// The errors of `end_session`.
pub(crate) fn end_session_errors() -> Vec<ApiError> {
    let mut all = errors::live_session_unsafe();
    all.push(ApiError::SessionNotFound);
    all
}

/// `DELETE /v1/auth/sessions/{id}` — requires an access token. Ends one of the caller's sessions.
#[utoipa::path(
    delete,
    path = "/v1/auth/sessions/{id}",
    tag = "auth",
    summary = "End one of my sessions",
    description = "Like a logout of that session: its access tokens fail at once with `token_revoked`.",
    params(("id" = String, Path, description = "Session (family) id")),
    security(("bearer" = []), ("access_cookie" = [])),
    responses((status = 204, description = "Ended.")),
)]
pub(crate) async fn end_session(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let sid = path_uuid(&path, ApiError::SessionNotFound)?;
    state.service.end_session(&principal, sid).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The errors of `create_invitation`.
pub(crate) fn invite_errors() -> Vec<ApiError> {
    let mut all = org_errors();
    all.extend(errors::json_body());
    all.extend([
        ApiError::CsrfRejected,
        ApiError::InsufficientRole,
        ApiError::InvalidEmail(""),
        errors::rate_limited(),
    ]);
    all
}

/// `POST /v1/organizations/{org}/invitations` — requires `admin` (`owner` to invite an owner). Mails an
/// invitation link to the address.
#[utoipa::path(
    post,
    path = "/v1/organizations/{org}/invitations",
    tag = "organizations",
    summary = "Invite someone by email",
    description = "The link (`<link base>/accept-invitation?token=…`) is mailed in the background; it works once, for 7 \
                   days, for the account with this email only: accepted with `/v1/invitations/accept` when signed \
                   in, or at registration with `invitation`.",
    params(("org" = String, Path, description = "Organization id or slug")),
    request_body = InviteBody,
    security(("bearer" = []), ("access_cookie" = []), ("api_key" = [])),
    responses((status = 201, description = "The invitation.", body = InvitationJson)),
)]
pub(crate) async fn create_invitation(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: ApiJson<InviteBody>,
) -> Result<HttpResponse, ApiError> {
    let InviteBody { email, role: raw_role } = body.0;
    let (email, role) = (Email::parse(&email)?, role(&raw_role)?);
    let invitation = state.service.invite(&caller, &path_org(&path)?, &email, role).await?;
    Ok(HttpResponse::Created().json(InvitationJson::from(&invitation)))
}

/// The errors of `list_invitations`.
pub(crate) fn invitations_errors() -> Vec<ApiError> {
    let mut all = org_errors();
    all.push(ApiError::InsufficientRole);
    all
}

/// `GET /v1/organizations/{org}/invitations` — requires `admin`.
#[utoipa::path(
    get,
    path = "/v1/organizations/{org}/invitations",
    tag = "organizations",
    summary = "List waiting invitations",
    params(("org" = String, Path, description = "Organization id or slug")),
    security(("bearer" = []), ("access_cookie" = []), ("api_key" = [])),
    responses((status = 200, description = "Invitations neither accepted, revoked nor expired.", body = InvitationList)),
)]
pub(crate) async fn list_invitations(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let invitations = state.service.invitations(&caller, &path_org(&path)?).await?;
    Ok(HttpResponse::Ok().json(InvitationList { invitations: invitations.iter().map(InvitationJson::from).collect() }))
}

/// The errors of `revoke_invitation`.
pub(crate) fn revoke_errors() -> Vec<ApiError> {
    let mut all = invitations_errors();
    all.extend([ApiError::CsrfRejected, ApiError::InvitationNotFound]);
    all
}

/// `DELETE /v1/organizations/{org}/invitations/{invitation_id}` — requires `admin`.
#[utoipa::path(
    delete,
    path = "/v1/organizations/{org}/invitations/{invitation_id}",
    tag = "organizations",
    summary = "Revoke a waiting invitation",
    params(("org" = String, Path, description = "Organization id or slug"),
           ("invitation_id" = String, Path, description = "The invitation's id")),
    security(("bearer" = []), ("access_cookie" = []), ("api_key" = [])),
    responses((status = 204, description = "Revoked: its link no longer works.")),
)]
pub(crate) async fn revoke_invitation(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (org, id) = path.into_inner();
    let id = path_uuid(&id, ApiError::InvitationNotFound)?;
    state.service.revoke_invitation(&caller, &path_org(&org)?, id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The errors of `accept_invitation`.
pub(crate) fn accept_errors() -> Vec<ApiError> {
    let mut all = errors::live_session_unsafe();
    all.extend(errors::json_body());
    all.extend([ApiError::InvitationInvalid, ApiError::InvitationEmailMismatch]);
    all
}

/// `POST /v1/invitations/accept` — requires an access token of the invited email's account.
#[utoipa::path(
    post,
    path = "/v1/invitations/accept",
    tag = "organizations",
    summary = "Accept an invitation",
    description = "The signed-in user joins the organization with the invitation's role (a member keeps their role). \
                   Switch the session there with `/v1/auth/refresh` and `organization`.",
    request_body = AcceptBody,
    security(("bearer" = []), ("access_cookie" = [])),
    responses((status = 200, description = "The organization joined, with the caller's role.", body = OrgJson)),
)]
pub(crate) async fn accept_invitation(
    state: web::Data<AppState>,
    principal: Principal,
    body: ApiJson<AcceptBody>,
) -> Result<HttpResponse, ApiError> {
    let (org, role) = state.service.accept_invitation(&principal, &body.0.token).await?;
    Ok(HttpResponse::Ok().json(OrgJson::new(&org, role)))
}

/// Which page of the audit log. Unknown parameters are refused.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct AuditQuery {
    /// The `next` of the previous page: entries older than it.
    #[param(pattern = r"^[0-9]{1,25}\.[0-9a-f]{32}$")]
    before: Option<String>,
    /// 1 to 200, default 50.
    #[param(minimum = 1, maximum = 200)]
    limit: Option<u32>,
}

/// One entry of the audit log.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct AuditJson<'a> {
    id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    at: OffsetDateTime,
    /// The user who acted (`null` when a key did, or once the user is deleted).
    #[schema(required = true)]
    actor_id: Option<Uuid>,
    /// The API key that acted (`null` when a user did).
    #[schema(required = true)]
    actor_key_id: Option<Uuid>,
    /// `organization.created`, `organization.updated`, `member.role_changed`, `member.removed`, `member.left`,
    /// `member.disabled`, `member.enabled`, `invitation.created`, `invitation.revoked`, `invitation.accepted`,
    /// `user.created`, `user.deleted`, `user.sessions_ended`, `api_key.created`, `api_key.revoked`.
    action: &'a str,
    /// What it was on: a user or invitation id (with the role given), or the fields changed.
    #[schema(required = true)]
    target: Option<&'a str>,
    /// The client address it came from.
    #[schema(required = true)]
    ip: Option<&'a str>,
}

/// A page of the audit log, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct AuditPage<'a> {
    events: Vec<AuditJson<'a>>,
    /// Pass as `before` for the next, older page; `null` on the last page.
    #[schema(required = true)]
    next: Option<String>,
}

/// Entries of a page when `limit` is not given.
const AUDIT_PAGE: u32 = 50;

/// The audit log's query: the cursor to page from (`before`) and the page's size.
///
/// # Errors
/// `invalid_request` naming `before` or `limit`.
pub(crate) fn audit_query(raw: &str) -> Result<(Option<(OffsetDateTime, Uuid)>, u32), ApiError> {
    let bad = || ApiError::invalid_field("before", "before must be the next of a previous page, limit 1 to 200");
    let query = web::Query::<AuditQuery>::from_query(raw).map_err(|_| bad())?.into_inner();
    let before = query.before.as_deref().map(|raw| audit_cursor(raw).ok_or_else(bad)).transpose()?;
    let limit = query.limit.unwrap_or(AUDIT_PAGE);
    if !(1..=crate::service::AUDIT_PAGE_MAX).contains(&limit) {
        return Err(ApiError::invalid_field("limit", "limit must be from 1 to 200"));
    }
    Ok((before, limit))
}

/// `<nanoseconds>.<id, 32 lower-case hex>`, exactly as `next` writes it (and the description's pattern says).
fn audit_cursor(raw: &str) -> Option<(OffsetDateTime, Uuid)> {
    let (nanos, id) = raw.split_once('.')?;
    let digits = (1..=25).contains(&nanos.len()) && nanos.bytes().all(|b| b.is_ascii_digit());
    let simple = id.len() == 32 && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !(digits && simple) {
        return None;
    }
    let at = OffsetDateTime::from_unix_timestamp_nanos(nanos.parse().ok()?).ok()?;
    Some((at, Uuid::try_parse(id).ok()?))
}

/// The errors of `get_audit_log`.
pub(crate) fn audit_errors() -> Vec<ApiError> {
    let mut all = org_errors();
    all.extend([ApiError::InsufficientRole, ApiError::invalid_field("before", "")]);
    all
}

/// `GET /v1/organizations/{org}/audit-log` — requires `admin`. Who changed what in the organization, when,
/// from where.
#[utoipa::path(
    get,
    path = "/v1/organizations/{org}/audit-log",
    tag = "organizations",
    summary = "The organization's audit log",
    description = "Every change to the organization, its members and invitations, written in the same transaction as \
                   the change: who, what, when, from which address. Newest first, paged with `next`.",
    params(("org" = String, Path, description = "Organization id or slug"), AuditQuery),
    security(("bearer" = []), ("access_cookie" = []), ("api_key" = [])),
    responses((status = 200, description = "A page of the audit log.", body = AuditPage)),
)]
pub(crate) async fn get_audit_log(
    state: web::Data<AppState>,
    caller: Caller,
    req: actix_web::HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (before, limit) = audit_query(req.query_string())?;
    let events = state.service.audit_log(&caller, &path_org(&path)?, before, limit).await?;
    let next = (events.len() == usize::try_from(limit).unwrap_or(usize::MAX))
        .then(|| events.last().map(|e| format!("{}.{}", e.at.unix_timestamp_nanos(), e.id.simple())))
        .flatten();
    let events = events
        .iter()
        .map(|e| AuditJson {
            id: e.id,
            at: e.at,
            actor_id: e.actor_id,
            actor_key_id: e.actor_key_id,
            action: &e.action,
            target: e.target.as_deref(),
            ip: e.ip.as_deref(),
        })
        .collect();
    Ok(HttpResponse::Ok().json(AuditPage { events, next }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_audit_cursor_is_exactly_what_next_writes() {
        let id = Uuid::now_v7();
        let next = format!("1790000000000000000.{}", id.simple());
        assert_eq!(audit_cursor(&next).map(|(_, found)| found), Some(id));
        for bad in [
            format!("+1790000000000000000.{}", id.simple()),
            format!("-1.{}", id.simple()),
            format!("1790000000000000000.{}", id.hyphenated()),
            format!("1790000000000000000.{}", id.simple().to_string().to_uppercase()),
            format!("{}.{}", "1".repeat(26), id.simple()),
            "1790000000000000000".to_owned(),
        ] {
            assert_eq!(audit_cursor(&bad), None, "{bad}");
        }
    }
}
