//! Kubernetes authentication and authorization of callers, as kube-rbac-proxy does it: a bearer
//! token is authenticated with a TokenReview, and what its user may do is asked with a
//! SubjectAccessReview. Used by `/metrics` (`--metrics-auth kubernetes`) and the console.

use k8s_openapi::api::{
    authentication::v1::{TokenReview, TokenReviewSpec, UserInfo},
    authorization::v1::{
        NonResourceAttributes, ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
    },
};
use kube::{Api, Client, api::PostParams};

/// Why a caller was not let through.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The API server does not accept the token.
    #[error("the token is not valid")]
    InvalidToken,
    /// The API server could not be asked.
    #[error("the API server could not check the token: {0}")]
    Unavailable(#[source] Box<kube::Error>),
}

/// What a SubjectAccessReview asks about.
#[derive(Debug, Clone)]
pub enum Access {
    /// A verb on a resource (`patch` `runtimefindings` in `shop`).
    Resource(Box<ResourceAttributes>),
    /// A verb on a non-resource URL (`get` `/metrics`).
    Url {
        /// The path.
        path: String,
        /// The verb.
        verb: String,
    },
}

impl Access {
    /// `verb` on `resource` of API group `group` (with `subresource`), in `namespace`, the
    /// object `name` when given.
    pub fn resource(
        verb: &str,
        group: &str,
        resource: &str,
        namespace: Option<&str>,
        name: Option<&str>,
    ) -> Self {
        Self::Resource(Box::new(ResourceAttributes {
            verb: Some(verb.to_owned()),
            group: Some(group.to_owned()),
            resource: Some(resource.to_owned()),
            namespace: namespace.map(str::to_owned),
            name: name.map(str::to_owned),
            ..ResourceAttributes::default()
        }))
    }

    /// What a person reads: `patch runtimefindings in shop`.
    pub fn describe(&self) -> String {
        match self {
            Self::Url { path, verb } => format!("{verb} {path}"),
            Self::Resource(r) => {
                let mut s = format!(
                    "{} {}{}",
                    r.verb.as_deref().unwrap_or(""),
                    r.resource.as_deref().unwrap_or(""),
                    r.group
                        .as_deref()
                        .filter(|g| !g.is_empty())
                        .map(|g| format!(".{g}"))
                        .unwrap_or_default()
                );
                if let Some(n) = &r.name {
                    s.push_str(&format!(" {n}"));
                }
                if let Some(ns) = &r.namespace {
                    s.push_str(&format!(" in namespace {ns}"));
                }
                s
            }
        }
    }
}

/// The user a bearer token belongs to (TokenReview).
pub async fn authenticate(client: &Client, token: &str) -> Result<UserInfo, AuthError> {
    let review = TokenReview {
        spec: TokenReviewSpec {
            token: token.to_owned(),
            ..TokenReviewSpec::default()
        },
        ..TokenReview::default()
    };
    let reviewed = Api::<TokenReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await
        .map_err(|e| AuthError::Unavailable(Box::new(e)))?;
    let status = reviewed.status.unwrap_or_default();
    match (status.authenticated, status.user) {
        (Some(true), Some(user)) => Ok(user),
        _ => Err(AuthError::InvalidToken),
    }
}

/// Whether `user` may do `access` (SubjectAccessReview).
pub async fn authorized(
    client: &Client,
    user: &UserInfo,
    access: &Access,
) -> Result<bool, AuthError> {
    let (resource_attributes, non_resource_attributes) = match access {
        Access::Resource(r) => (Some(ResourceAttributes::clone(r)), None),
        Access::Url { path, verb } => (
            None,
            Some(NonResourceAttributes {
                path: Some(path.clone()),
                verb: Some(verb.clone()),
            }),
        ),
    };
    let review = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: user.username.clone(),
            groups: user.groups.clone(),
            uid: user.uid.clone(),
            extra: user.extra.clone(),
            resource_attributes,
            non_resource_attributes,
        },
        ..SubjectAccessReview::default()
    };
    let decided = Api::<SubjectAccessReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await
        .map_err(|e| AuthError::Unavailable(Box::new(e)))?;
    Ok(decided.status.is_some_and(|s| s.allowed))
}

/// A user's name as shown (`system:anonymous` stands in for none).
pub fn user_name(user: &UserInfo) -> &str {
    user.username.as_deref().unwrap_or("the caller")
}
