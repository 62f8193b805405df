//! The generic verbs (get, list, create, update, patch) for every resource in the registry,
//! with the subresource rules of kube-apiserver: the main resource ignores status changes,
//! `/status` takes only status, namespaces' `/finalize` takes only `spec.finalizers`.

use axum::response::Response;
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use crate::context::{Query, Shared, Target, str_at};
use crate::convert::{storage, to_storage, to_view};
use crate::defaults;
use crate::errors::{ApiError, ApiResult, json_response};
use crate::field_validation::{self, FieldValidation};
use crate::patch::{self, PatchType};
use crate::pod_security::{Admission, Review};
use crate::registry::{self, ResourceInfo};
use crate::store::{Change, Outcome};
pub use crate::update::update_change;
use crate::validation;
use crate::validation::claim_resize::ResizeAdmission;

/// Parses an object body in JSON, YAML or (for the kinds kubectl ≥ 1.32's typed clients
/// send that way) Kubernetes protobuf.
pub fn parse_object(headers: &HeaderMap, body: &[u8]) -> ApiResult<Value> {
    // A Content-Type that is not text is no media type (Go's mime.ParseMediaType fails on
    // it, and the request is a 415); a missing one means JSON.
    let content_type = match headers.get(http::header::CONTENT_TYPE) {
        None => "application/json",
        Some(value) => value.to_str().map_err(|_| {
            ApiError::unsupported_media_type(&String::from_utf8_lossy(value.as_bytes()))
        })?,
    };
    let media = content_type.split(';').next().unwrap_or_default().trim();
    match media {
        "application/yaml" => {
            let value = patch::parse_body(PatchType::Apply, body)?;
            if !value.is_object() {
                return Err(ApiError::bad_request(
                    "the body of the request is not an object",
                ));
            }
            Ok(value)
        }
        "application/json" | "" | "*/*" => parse_json(body),
        crate::protobuf::MEDIA_TYPE => crate::protobuf::decode_object(body),
        other => Err(ApiError::unsupported_media_type(other)),
    }
}

/// The patch type named by the `Content-Type` and the parsed patch body, for PATCH of an
/// object and of its `/scale`.
pub fn parse_patch(headers: &HeaderMap, body: &[u8]) -> ApiResult<(PatchType, Value)> {
    let content_type = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let patch_type = PatchType::from_content_type(content_type)?;
    let patch_body = patch::parse_body(patch_type, body)?;
    Ok((patch_type, patch_body))
}

pub fn parse_json(body: &[u8]) -> ApiResult<Value> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!(
            "the body of the request could not be decoded as JSON: {e}"
        ))
    })?;
    if !value.is_object() {
        return Err(ApiError::bad_request(
            "the body of the request is not a JSON object",
        ));
    }
    Ok(value)
}

pub fn get(state: &Shared, target: &Target) -> ApiResult<Value> {
    let name = target.name()?;
    state
        .store
        .get(target.resource.store_key(), target.store_namespace(), name)
        .map(|object| to_view(target.resource, object))
        .ok_or_else(|| ApiError::not_found(&target.resource.qualified_plural(), name))
}

/// GET of one object: the object, or a one-row Table when the client asks for Tables
/// (`kubectl get pod web-0`).
pub fn get_response(
    state: &Shared,
    target: &Target,
    query: &Query,
    headers: &HeaderMap,
) -> ApiResult<Response> {
    let object = get(state, target)?;
    if target.subresource.is_none() && crate::table::wants_table(headers) {
        let revision = str_at(&object, "/metadata/resourceVersion")
            .unwrap_or_default()
            .to_string();
        let table = crate::table::to_table(
            target.resource.plural,
            std::slice::from_ref(&object),
            &revision,
            query.get("includeObject"),
        );
        return Ok(json_response(StatusCode::OK, &table));
    }
    Ok(json_response(StatusCode::OK, &object))
}

/// GET of a collection, with kube-apiserver's paging and resourceVersion rules.
pub fn list(
    state: &Shared,
    target: &Target,
    query: &Query,
    headers: &HeaderMap,
) -> ApiResult<Response> {
    Ok(crate::paging::list(state, target, query, headers))
}

/// The namespace must exist and not be terminating before anything is created in it.
pub fn check_namespace(
    state: &Shared,
    resource: &ResourceInfo,
    namespace: &str,
    name: &str,
) -> ApiResult<()> {
    let Some(ns) = state.store.get("/namespaces", "", namespace) else {
        return Err(ApiError::not_found("namespaces", namespace));
    };
    if ns
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|t| !t.is_null())
    {
        return Err(ApiError::forbidden(
            &resource.qualified_plural(),
            name,
            format!(
                "unable to create new content in namespace {namespace} because it is being terminated"
            ),
        ));
    }
    Ok(())
}

/// Creates `object` (already parsed) at `target`; shared by POST and server-side apply.
/// Returns the created object and the warnings of admission (Pod Security's).
pub fn create_object(
    state: &Shared,
    target: &Target,
    object: Value,
    dry_run: bool,
) -> ApiResult<(Value, Vec<String>)> {
    let view = target.resource;
    let resource = storage(view);
    let mut object = to_storage(view, object);
    if resource.namespaced {
        let ns = target.store_namespace();
        if let Some(body_ns) = str_at(&object, "/metadata/namespace").filter(|n| !n.is_empty())
            && body_ns != ns
        {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        let name = str_at(&object, "/metadata/name")
            .unwrap_or_default()
            .to_string();
        check_namespace(state, resource, ns, &name)?;
    }
    defaults::prepare_create(resource, &mut object, target.namespace.as_deref())?;
    // Mutating admission runs before validation.
    if resource.plural_key == "networking.k8s.io/ingresses" {
        crate::default_ingress_class::admit(&state.store, &mut object);
    }
    validation::validate_create(view, &object)?;
    // Validating admission runs after validation, as in kube-apiserver.
    let review = Admission::prepare(&state.store, target).review(None, &object)?;
    let allocated = if resource.plural == "services" {
        crate::services::prepare_service(&mut object, &state.ips)?
    } else {
        Vec::new()
    };
    let name = str_at(&object, "/metadata/name")
        .unwrap_or_default()
        .to_string();
    let qualified = view.qualified_plural();
    let result = state.store.mutate(
        resource.store_key(),
        target.store_namespace(),
        &name,
        dry_run,
        |current| {
            if current.is_some() {
                return Err(ApiError::already_exists(&qualified, &name));
            }
            Ok(Change::Put(object))
        },
    );
    if result.is_err() || dry_run {
        allocated.iter().for_each(|ip| state.ips.release(ip));
    }
    let created = to_view(view, result?.into_object());
    Ok((created, review.into_warnings(&state.store)))
}

/// The body of a create or update must be of the URL's type (kube-apiserver decodes it so);
/// the `/scale` subresource, whose body is a Scale, checks its own.
fn check_type(target: &Target, object: &Value, body: &[u8]) -> ApiResult<()> {
    match target.subresource.as_deref() {
        None | Some("status" | "finalize") => {
            validation::typemeta::check_body(target.resource, object, body)
        }
        Some(_) => Ok(()),
    }
}

pub fn create(
    state: &Shared,
    target: &Target,
    query: &Query,
    headers: &HeaderMap,
    body: &[u8],
) -> ApiResult<Response> {
    let (object, mut warnings) = decode_for_create(target, query, headers, body)?;
    let (created, admitted) = create_object(state, target, object, query.dry_run())?;
    warnings.extend(admitted);
    Ok(created_response(&created, &warnings))
}

/// The object of a create request, checked as kube-apiserver's decoder does (media type,
/// kind, the `fieldValidation` directive), and the field warnings to send back.
pub(crate) fn decode_for_create(
    target: &Target,
    query: &Query,
    headers: &HeaderMap,
    body: &[u8],
) -> ApiResult<(Value, Vec<String>)> {
    let directive = FieldValidation::from_query(query)?;
    let object = parse_object(headers, body)?;
    check_type(target, &object, body)?;
    let warnings = field_validation::check(directive, target.resource, &object)?;
    Ok((object, warnings))
}

/// 201 Created with `created` and the warnings.
pub(crate) fn created_response(created: &Value, warnings: &[String]) -> Response {
    let mut response = json_response(StatusCode::CREATED, created);
    field_validation::add_warnings(&mut response, warnings);
    response
}

/// Runs `decide` on the stored object `name` at `target` in one store transaction; 404 when
/// there is none. The first step of every verb that changes an existing object.
pub fn mutate_existing(
    state: &Shared,
    target: &Target,
    name: &str,
    dry_run: bool,
    decide: impl FnOnce(&Value) -> ApiResult<Change>,
) -> ApiResult<Outcome> {
    let resource = target.resource;
    state.store.mutate(
        resource.store_key(),
        target.store_namespace(),
        name,
        dry_run,
        |current| {
            let old =
                current.ok_or_else(|| ApiError::not_found(&resource.qualified_plural(), name))?;
            decide(old)
        },
    )
}

/// [`mutate_existing`], admission of the object `decide` chose, then [`finish`]: the object
/// as an update answers it, and the warnings of admission (Pod Security's). Every update verb
/// (PUT, PATCH, apply, `/scale`, `/status`) goes through here.
pub fn update_existing(
    state: &Shared,
    target: &Target,
    name: &str,
    dry_run: bool,
    decide: impl FnOnce(&Value) -> ApiResult<Change>,
) -> ApiResult<(Value, Vec<String>)> {
    // Read before the transaction: the store is locked while `decide` runs.
    let admission = Admission::prepare(&state.store, target);
    let resize = ResizeAdmission::prepare(&state.store, target, name);
    let mut review = Review::default();
    let outcome = mutate_existing(state, target, name, dry_run, |old| {
        let change = decide(old)?;
        // A no-op update is admitted too, as kube-apiserver admits it before comparing.
        if let Change::Put(new) | Change::Keep(new) = &change {
            resize.review(old, new)?;
            review = admission.review(Some(old), new)?;
        }
        Ok(change)
    })?;
    let object = finish(state, target.resource, outcome, dry_run);
    Ok((object, review.into_warnings(&state.store)))
}

/// Finishes an update: releases a deleted Service's cluster IP; 200 with the object.
/// `resource` is the resource the client addressed; the object is returned in its shape.
pub fn finish(state: &Shared, resource: &ResourceInfo, outcome: Outcome, dry_run: bool) -> Value {
    if let (Outcome::Deleted(object), false) = (&outcome, dry_run) {
        release_service_ips(state, resource, object);
    }
    to_view(resource, outcome.into_object())
}

pub fn release_service_ips(state: &Shared, resource: &ResourceInfo, object: &Value) {
    if resource.plural != "services" {
        return;
    }
    if let Some(ips) = object.pointer("/spec/clusterIPs").and_then(Value::as_array) {
        ips.iter()
            .filter_map(Value::as_str)
            .filter(|ip| *ip != "None")
            .for_each(|ip| state.ips.release(ip));
    }
}

pub fn update(
    state: &Shared,
    target: &Target,
    query: &Query,
    headers: &HeaderMap,
    body: &[u8],
) -> ApiResult<Response> {
    let name = target.name()?.to_string();
    let resource = target.resource;
    let directive = FieldValidation::from_query(query)?;
    let parsed = parse_object(headers, body)?;
    check_type(target, &parsed, body)?;
    let warnings = field_validation::check(directive, resource, &parsed)?;
    // rest.EnsureObjectNamespaceMatchesRequestNamespace, as for a create.
    if let (Some(namespace), Some(body_namespace)) = (
        target.namespace.as_deref().filter(|_| resource.namespaced),
        str_at(&parsed, "/metadata/namespace").filter(|n| !n.is_empty()),
    ) && body_namespace != namespace
    {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    let new = to_storage(resource, parsed);
    let sub = target.subresource.as_deref();
    let dry_run = query.dry_run();
    // Like kube-apiserver's AllowCreateOnUpdate: a PUT of a missing Endpoints, Event or
    // Lease creates it.
    if sub.is_none()
        && matches!(storage(resource).plural, "endpoints" | "events" | "leases")
        && state
            .store
            .get(resource.store_key(), target.store_namespace(), &name)
            .is_none()
    {
        let mut object = to_view(resource, new);
        object["metadata"]["name"] = json!(name);
        match create_object(state, target, object, dry_run) {
            Ok((created, admitted)) => {
                let mut response = json_response(StatusCode::CREATED, &created);
                field_validation::add_warnings(&mut response, &warnings);
                field_validation::add_warnings(&mut response, &admitted);
                return Ok(response);
            }
            Err(e) if e.reason == "AlreadyExists" => {
                return Err(ApiError::conflict(&resource.qualified_plural(), &name));
            }
            Err(e) => return Err(e),
        }
    }
    let (object, admitted) = update_existing(state, target, &name, dry_run, |old| {
        update_change(storage(resource), sub, old, new)
    })?;
    let mut response = json_response(StatusCode::OK, &object);
    field_validation::add_warnings(&mut response, &warnings);
    field_validation::add_warnings(&mut response, &admitted);
    Ok(response)
}

pub fn patch(
    state: &Shared,
    target: &Target,
    query: &Query,
    headers: &HeaderMap,
    body: &[u8],
) -> ApiResult<Response> {
    let name = target.name()?.to_string();
    let resource = target.resource;
    let directive = FieldValidation::from_query(query)?;
    let (patch_type, patch_body) = parse_patch(headers, body)?;
    let sub = target.subresource.as_deref();
    let dry_run = query.dry_run();
    let manager = query
        .get("fieldManager")
        .filter(|m| !m.is_empty())
        .map(String::from);
    if patch_type == PatchType::Apply {
        let Some(manager) = manager else {
            return Err(ApiError::invalid(
                "PatchOptions.meta.k8s.io",
                "",
                &[(
                    "fieldManager".into(),
                    "Required value: is required for apply patch".into(),
                )],
            ));
        };
        if !patch_body.is_object() {
            return Err(ApiError::bad_request("apply patch must be an object"));
        }
        validation::typemeta::check_applied(resource, &patch_body)?;
        check_applied_types(target, &name, &patch_body)?;
        let request = ApplyRequest {
            manager: &manager,
            directive,
            dry_run,
        };
        return apply(state, target, &name, request, patch_body);
    }
    let mut warnings = Vec::new();
    let (object, admitted) = update_existing(state, target, &name, dry_run, |old| {
        let patched = patch::apply_patch(patch_type, &to_view(resource, old.clone()), &patch_body)?;
        check_patched_types(resource, &patched)?;
        warnings = field_validation::check(directive, resource, &patched)?;
        update_change(storage(resource), sub, old, to_storage(resource, patched))
    })?;
    let mut response = json_response(StatusCode::OK, &object);
    field_validation::add_warnings(&mut response, &warnings);
    field_validation::add_warnings(&mut response, &admitted);
    Ok(response)
}

/// A patched object that does not decode as its kind is a 422 on the `patch` field, as
/// kube-apiserver's patcher reports it (`runtime.DecodeInto` for JSON and merge patches,
/// `FromUnstructured` for strategic merge patches; both quote the patched object).
fn check_patched_types(resource: &ResourceInfo, patched: &Value) -> ApiResult<()> {
    match field_validation::decoding_error(resource, patched) {
        Some(error) => Err(ApiError::invalid(
            "",
            "",
            &[(
                "patch".into(),
                format!(
                    "Invalid value: {}: {error}",
                    Value::String(patched.to_string())
                ),
            )],
        )),
        None => Ok(()),
    }
}

/// An applied configuration that does not decode as its kind is refused before it is
/// merged, with the words of kube-apiserver's field manager ("failed to create typed patch
/// object"). kube-apiserver 1.33 answers it with a 500 (kubernetes/kubernetes#139253, an
/// acknowledged bug); the fix proposed upstream (#139255) makes it the 400 sent here.
fn check_applied_types(target: &Target, name: &str, applied: &Value) -> ApiResult<()> {
    let resource = target.resource;
    let Some(error) = field_validation::decoding_error(resource, applied) else {
        return Ok(());
    };
    let group_version = if resource.group.is_empty() {
        format!("/{}", resource.version)
    } else {
        format!("{}/{}", resource.group, resource.version)
    };
    Err(ApiError::bad_request(format!(
        "failed to create typed patch object ({}/{name}; {group_version}, Kind={}): {error}",
        target.namespace.as_deref().unwrap_or_default(),
        resource.kind,
    )))
}

/// The parameters of one server-side apply request.
struct ApplyRequest<'a> {
    manager: &'a str,
    directive: FieldValidation,
    dry_run: bool,
}

/// Server-side apply: create when missing, else merge the applied configuration in.
fn apply(
    state: &Shared,
    target: &Target,
    name: &str,
    request: ApplyRequest,
    applied: Value,
) -> ApiResult<Response> {
    let ApplyRequest {
        manager,
        directive,
        dry_run,
    } = request;
    let resource = target.resource;
    let sub = target.subresource.as_deref();
    let now = defaults::now();
    let fields = patch::fields_v1(&applied);
    let api_version = resource.api_version();
    if sub.is_none()
        && state
            .store
            .get(resource.store_key(), target.store_namespace(), name)
            .is_none()
    {
        // As kube-apiserver's `checkName`: the URL names the object.
        if let Some(body_name) = str_at(&applied, "/metadata/name").filter(|n| *n != name) {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        let mut object = applied.clone();
        object["metadata"]["name"] = json!(name);
        patch::record_manager(
            &mut object,
            manager,
            "Apply",
            None,
            fields.clone(),
            &api_version,
            &now,
        );
        let warnings = field_validation::check(directive, resource, &object)?;
        match create_object(state, target, object, dry_run) {
            Ok((created, admitted)) => {
                let mut response = json_response(StatusCode::CREATED, &created);
                field_validation::add_warnings(&mut response, &warnings);
                field_validation::add_warnings(&mut response, &admitted);
                return Ok(response);
            }
            Err(e) if e.reason == "AlreadyExists" => {}
            Err(e) => return Err(e),
        }
    }
    let mut warnings = Vec::new();
    let (object, admitted) = update_existing(state, target, name, dry_run, |old| {
        let mut merged = to_view(resource, old.clone());
        if let Some(previous) = patch::applied_fields(&merged, manager, sub) {
            patch::remove_unapplied(&mut merged, &previous, &fields);
        }
        patch::strategic_merge(&mut merged, &applied, "");
        patch::record_manager(
            &mut merged,
            manager,
            "Apply",
            sub,
            fields,
            &api_version,
            &now,
        );
        warnings = field_validation::check(directive, resource, &merged)?;
        update_change(storage(resource), sub, old, to_storage(resource, merged))
    })?;
    let mut response = json_response(StatusCode::OK, &object);
    field_validation::add_warnings(&mut response, &warnings);
    field_validation::add_warnings(&mut response, &admitted);
    Ok(response)
}

/// `POST .../pods/{name}/binding`: assigns the pod to a node, once (as the scheduler does).
pub fn bind(state: &Shared, target: &Target, body: &[u8]) -> ApiResult<Response> {
    let name = target.name()?.to_string();
    let binding = parse_json(body)?;
    let node = str_at(&binding, "/target/name")
        .filter(|n| !n.is_empty())
        .map(String::from);
    let Some(node) = node else {
        return Err(ApiError::invalid(
            "Binding",
            &name,
            &[("target.name".into(), "Required value".into())],
        ));
    };
    let pods = registry::find("", "v1", "pods")
        .ok_or_else(|| ApiError::internal("pods not registered"))?;
    state.store.mutate(
        pods.store_key(),
        target.store_namespace(),
        &name,
        false,
        |current| {
            let old = current.ok_or_else(|| ApiError::not_found("pods", &name))?;
            if str_at(old, "/spec/nodeName").is_some_and(|n| !n.is_empty()) {
                return Err(ApiError::conflict("pods", &name));
            }
            let mut pod = old.clone();
            pod["spec"]["nodeName"] = json!(node);
            Ok(Change::Put(pod))
        },
    )?;
    let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201});
    Ok(json_response(StatusCode::CREATED, &status))
}
