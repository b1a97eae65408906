//! Resolution of a parsed SOQL statement against the schema: object and
//! field names (parent paths per possible target object), the SELECT tree,
//! ORDER BY keys, OFFSET limits. Filters are in `filter`.

use chrono::{NaiveDate, Utc};

use super::SoqlError;
use super::ast::{OrderItem, PathRef, Query, SelectItem};
use super::located;
use super::plan::{CompiledQuery, Path, Proj, SortKey};
use crate::simulator::schema::{ObjId, schema};

/// Salesforce's cap on OFFSET.
const MAX_OFFSET: u64 = 2000;

pub(super) struct Compiler<'a> {
    pub(super) src: &'a str,
    pub(super) today: NaiveDate,
}

/// Resolves `query` (parsed from `src`) against the schema.
pub fn compile(src: &str, query: &Query) -> Result<CompiledQuery, SoqlError> {
    let c = Compiler {
        src,
        today: Utc::now().date_naive(),
    };
    let object = schema().object_id(&query.from).ok_or_else(|| {
        SoqlError::InvalidType(located(
            src,
            query.from_pos,
            &format!(
                "sObject type '{}' is not supported. If you are attempting to use a custom object, \
                 be sure to append the '__c' after the entity name. Please reference your WSDL or \
                 the describe call for the appropriate names.",
                query.from
            ),
        ))
    })?;
    let count_only = query
        .select
        .iter()
        .any(|s| matches!(s, SelectItem::Count { .. }));
    let mut projection = Vec::new();
    for item in &query.select {
        match item {
            SelectItem::Count { pos } if query.select.len() > 1 => {
                return Err(SoqlError::malformed(
                    src,
                    *pos,
                    "COUNT() must be the only element in the SELECT list",
                ));
            }
            SelectItem::Count { .. } => {}
            SelectItem::Field(path) => c.project(object, &mut projection, &path.parts, path)?,
        }
    }
    let filter = query
        .filter
        .as_ref()
        .map(|f| c.cond(object, f))
        .transpose()?;
    let order = query
        .order_by
        .iter()
        .map(|o| c.sort_key(object, o))
        .collect::<Result<_, _>>()?;
    if let Some((offset, pos)) = query.offset
        && offset > MAX_OFFSET
    {
        return Err(SoqlError::OutOfRange(located(
            src,
            pos,
            "Maximum SOQL offset allowed is 2000",
        )));
    }
    Ok(CompiledQuery {
        object,
        count_only,
        projection,
        filter,
        order,
        limit: query
            .limit
            .map(|l| usize::try_from(l).unwrap_or(usize::MAX)),
        offset: query.offset.map_or(0, |o| o.0 as usize),
    })
}

impl Compiler<'_> {
    fn no_column(&self, obj: ObjId, name: &str, at: &PathRef) -> SoqlError {
        SoqlError::InvalidField(located(
            self.src,
            at.pos,
            &format!(
                "No such column '{name}' on entity '{}'. If you are attempting to use a custom \
                 field, be sure to append the '__c' after the custom field name. Please reference \
                 your WSDL or the describe call for the appropriate names.",
                schema().object(obj).name
            ),
        ))
    }

    fn no_relationship(&self, name: &str, at: &PathRef) -> SoqlError {
        SoqlError::InvalidField(located(
            self.src,
            at.pos,
            &format!(
                "Didn't understand relationship '{name}' in field path. If you are attempting to \
                 use a custom relationship, be sure to append the '__r' after the custom \
                 relationship name. Please reference your WSDL or the describe call for the \
                 appropriate names."
            ),
        ))
    }

    /// The reference field named by relationship `name`, and its targets.
    fn hop(&self, obj: ObjId, name: &str, at: &PathRef) -> Result<(usize, Vec<ObjId>), SoqlError> {
        let def = schema().object(obj);
        let via = def
            .relationship(name)
            .ok_or_else(|| self.no_relationship(name, at))?;
        let targets = def.fields[via]
            .reference_to
            .iter()
            .filter_map(|t| schema().object_id(t))
            .collect();
        Ok((via, targets))
    }

    pub(super) fn path(
        &self,
        obj: ObjId,
        parts: &[String],
        at: &PathRef,
    ) -> Result<Path, SoqlError> {
        match parts {
            [name] => schema()
                .object(obj)
                .field_index(name)
                .map(Path::Field)
                .ok_or_else(|| self.no_column(obj, name, at)),
            [rel, rest @ ..] => {
                let (via, target_objs) = self.hop(obj, rel, at)?;
                let mut targets = Vec::new();
                let mut first_err = None;
                for t in target_objs {
                    match self.path(t, rest, at) {
                        Ok(p) => targets.push((t, p)),
                        Err(e) => first_err = first_err.or(Some(e)),
                    }
                }
                match (targets.is_empty(), first_err) {
                    (true, Some(e)) => Err(e),
                    _ => Ok(Path::Parent { via, targets }),
                }
            }
            [] => Err(SoqlError::malformed(
                self.src,
                at.pos,
                "unexpected token: <EOF>",
            )),
        }
    }

    fn project(
        &self,
        obj: ObjId,
        list: &mut Vec<Proj>,
        parts: &[String],
        at: &PathRef,
    ) -> Result<(), SoqlError> {
        match parts {
            [name] => {
                let f = schema()
                    .object(obj)
                    .field_index(name)
                    .ok_or_else(|| self.no_column(obj, name, at))?;
                if list.iter().any(|p| matches!(p, Proj::Field(g) if *g == f)) {
                    return Err(SoqlError::malformed(
                        self.src,
                        at.pos,
                        &format!("duplicate field selected: {}", at.parts.join(".")),
                    ));
                }
                list.push(Proj::Field(f));
                Ok(())
            }
            [rel, rest @ ..] => {
                let (via, target_objs) = self.hop(obj, rel, at)?;
                let index = match list
                    .iter()
                    .position(|p| matches!(p, Proj::Parent { via: v, .. } if *v == via))
                {
                    Some(i) => i,
                    None => {
                        let name = schema().object(obj).fields[via]
                            .relationship_name
                            .unwrap_or_default();
                        let targets = target_objs.iter().map(|t| (*t, Vec::new())).collect();
                        list.push(Proj::Parent { via, name, targets });
                        list.len() - 1
                    }
                };
                let Proj::Parent { targets, .. } = &mut list[index] else {
                    return Ok(());
                };
                let mut resolved = false;
                let mut first_err = None;
                for (t, children) in targets.iter_mut() {
                    match self.project(*t, children, rest, at) {
                        Ok(()) => resolved = true,
                        Err(e) => first_err = first_err.or(Some(e)),
                    }
                }
                match (resolved, first_err) {
                    (false, Some(e)) => Err(e),
                    _ => Ok(()),
                }
            }
            [] => Ok(()),
        }
    }

    fn sort_key(&self, obj: ObjId, item: &OrderItem) -> Result<SortKey, SoqlError> {
        let path = self.path(obj, &item.path.parts, &item.path)?;
        let leaf = path.leaf(obj);
        if !leaf.sortable {
            return Err(SoqlError::InvalidField(located(
                self.src,
                item.path.pos,
                &format!("field '{}' can not be sorted in a query call", leaf.name),
            )));
        }
        Ok(SortKey {
            path,
            descending: item.descending,
            nulls_last: item.nulls_last,
        })
    }
}
