//! Object and field metadata: the one description of each sObject that
//! describe reports, SOQL resolves names against and writes are validated by.

use std::collections::HashMap;
use std::sync::OnceLock;

/// Index of an object in [`Schema::objects`].
pub type ObjId = usize;

/// Salesforce field types used by the simulated objects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldType {
    Id,
    Reference,
    String,
    Picklist,
    Combobox,
    Textarea,
    Email,
    Phone,
    Url,
    Boolean,
    Int,
    Double,
    Currency,
    Date,
    DateTime,
    Percent,
    /// `HH:MM:SS.sssZ`, stored as text in that form (which sorts as time).
    Time,
    /// `;`-separated values.
    Multipicklist,
    /// A compound of `<base>__Latitude__s` and `<base>__Longitude__s`: no
    /// stored value of its own; a query returns `{latitude, longitude}`.
    Location,
    /// A compound of street, city, state, postal code, country, latitude
    /// and longitude components (`BillingAddress`): no stored value of its
    /// own; a query returns an object of its components.
    Address,
    /// A 64-bit integer.
    Long,
    /// Binary data, stored base64-encoded. A query returns a URL to the
    /// blob instead of the data (`/sobjects/Attachment/{id}/Body`).
    Base64,
}

/// How values of a type are stored and compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueKind {
    /// Compared case-insensitively.
    Text,
    /// Compared exactly, in canonical 18-character form.
    Id,
    Int,
    Number,
    Bool,
    Date,
    DateTime,
}

impl FieldType {
    /// The `type` that describe reports.
    pub fn api_name(self) -> &'static str {
        match self {
            FieldType::Id => "id",
            FieldType::Reference => "reference",
            FieldType::String => "string",
            FieldType::Picklist => "picklist",
            FieldType::Combobox => "combobox",
            FieldType::Textarea => "textarea",
            FieldType::Email => "email",
            FieldType::Phone => "phone",
            FieldType::Url => "url",
            FieldType::Boolean => "boolean",
            FieldType::Int => "int",
            FieldType::Double => "double",
            FieldType::Currency => "currency",
            FieldType::Date => "date",
            FieldType::DateTime => "datetime",
            FieldType::Percent => "percent",
            FieldType::Time => "time",
            FieldType::Multipicklist => "multipicklist",
            FieldType::Location => "location",
            FieldType::Address => "address",
            FieldType::Long => "long",
            FieldType::Base64 => "base64",
        }
    }

    pub fn soap_type(self) -> &'static str {
        match self {
            FieldType::Id | FieldType::Reference => "tns:ID",
            FieldType::Boolean => "xsd:boolean",
            FieldType::Int => "xsd:int",
            FieldType::Double | FieldType::Currency | FieldType::Percent => "xsd:double",
            FieldType::Date => "xsd:date",
            FieldType::Time => "xsd:time",
            FieldType::Location => "urn:location",
            FieldType::Address => "urn:address",
            FieldType::Long => "xsd:long",
            FieldType::Base64 => "xsd:base64Binary",
            FieldType::DateTime => "xsd:dateTime",
            _ => "xsd:string",
        }
    }

    pub fn kind(self) -> ValueKind {
        match self {
            FieldType::Id | FieldType::Reference => ValueKind::Id,
            FieldType::Boolean => ValueKind::Bool,
            FieldType::Int | FieldType::Long => ValueKind::Int,
            FieldType::Double | FieldType::Currency | FieldType::Percent => ValueKind::Number,
            FieldType::Date => ValueKind::Date,
            FieldType::DateTime => ValueKind::DateTime,
            _ => ValueKind::Text,
        }
    }
}

#[derive(Clone, Debug)]
pub struct PicklistEntry {
    pub value: &'static str,
    pub default: bool,
}

/// One field as describe reports it. Built with [`FieldDef::new`] and the
/// chained setters below, which start from Salesforce's defaults for the type.
#[derive(Clone, Debug)]
pub struct FieldDef {
    pub name: &'static str,
    pub label: &'static str,
    pub ftype: FieldType,
    pub length: u32,
    pub precision: u32,
    pub scale: u32,
    pub digits: u32,
    pub nillable: bool,
    pub createable: bool,
    pub updateable: bool,
    pub filterable: bool,
    pub sortable: bool,
    pub groupable: bool,
    pub external_id: bool,
    pub id_lookup: bool,
    pub unique: bool,
    pub calculated: bool,
    pub defaulted_on_create: bool,
    pub custom: bool,
    pub name_field: bool,
    pub reference_to: Vec<&'static str>,
    pub relationship_name: Option<&'static str>,
    pub picklist: Vec<PicklistEntry>,
    pub restricted_picklist: bool,
    /// describe's `compoundFieldName`: the compound this field is part of.
    pub compound: Option<&'static str>,
}

impl FieldDef {
    pub fn new(name: &'static str, label: &'static str, ftype: FieldType) -> FieldDef {
        let length = match ftype {
            FieldType::Id | FieldType::Reference => 18,
            FieldType::Email => 80,
            FieldType::Phone => 40,
            FieldType::Textarea => 32000,
            FieldType::String | FieldType::Picklist | FieldType::Combobox | FieldType::Url => 255,
            FieldType::Multipicklist => 4099,
            _ => 0,
        };
        let (precision, scale) = match ftype {
            FieldType::Double => (18, 0),
            FieldType::Currency => (18, 2),
            FieldType::Percent => (18, 0),
            _ => (0, 0),
        };
        let groupable = !matches!(
            ftype,
            FieldType::Double
                | FieldType::Currency
                | FieldType::Percent
                | FieldType::DateTime
                | FieldType::Textarea
                | FieldType::Multipicklist
                | FieldType::Location
                | FieldType::Address
                | FieldType::Base64
        );
        // Long text, blobs and compounds cannot be filtered; multi-select
        // picklists cannot be sorted.
        let filterable = !matches!(
            ftype,
            FieldType::Textarea | FieldType::Location | FieldType::Address | FieldType::Base64
        );
        let sortable = !matches!(
            ftype,
            FieldType::Textarea
                | FieldType::Location
                | FieldType::Address
                | FieldType::Multipicklist
                | FieldType::Base64
        );
        FieldDef {
            name,
            label,
            ftype,
            length,
            precision,
            scale,
            digits: match ftype {
                FieldType::Int => 9,
                FieldType::Long => 18,
                _ => 0,
            },
            nillable: ftype != FieldType::Boolean,
            createable: true,
            updateable: true,
            filterable,
            sortable,
            groupable,
            external_id: false,
            id_lookup: ftype == FieldType::Id,
            unique: false,
            calculated: false,
            defaulted_on_create: ftype == FieldType::Boolean,
            custom: name.ends_with("__c"),
            name_field: false,
            reference_to: Vec::new(),
            relationship_name: None,
            picklist: Vec::new(),
            restricted_picklist: false,
            compound: None,
        }
    }

    /// A component of compound field `compound` (address, location).
    pub fn part_of(mut self, compound: &'static str) -> Self {
        self.compound = Some(compound);
        self
    }

    pub fn max_len(mut self, length: u32) -> Self {
        self.length = length;
        self
    }
    /// Not nillable: required on create unless defaulted.
    pub fn required(mut self) -> Self {
        self.nillable = false;
        self
    }
    /// Set by the system only.
    pub fn system(mut self) -> Self {
        self.createable = false;
        self.updateable = false;
        self.defaulted_on_create = true;
        self
    }
    pub fn create_only(mut self) -> Self {
        self.updateable = false;
        self
    }
    /// Derived from other fields (e.g. Contact.Name).
    pub fn calculated(mut self) -> Self {
        self.calculated = true;
        self.createable = false;
        self.updateable = false;
        self
    }
    pub fn name_field(mut self) -> Self {
        self.name_field = true;
        self
    }
    pub fn id_lookup(mut self) -> Self {
        self.id_lookup = true;
        self
    }
    pub fn external_id(mut self) -> Self {
        self.external_id = true;
        self.id_lookup = true;
        self
    }
    pub fn unique(mut self) -> Self {
        self.unique = true;
        self
    }
    pub fn defaulted(mut self) -> Self {
        self.defaulted_on_create = true;
        self
    }
    pub fn number(mut self, precision: u32, scale: u32) -> Self {
        self.precision = precision;
        self.scale = scale;
        self
    }
    pub fn digits(mut self, digits: u32) -> Self {
        self.digits = digits;
        self
    }
    pub fn refs(mut self, to: &[&'static str], relationship: &'static str) -> Self {
        self.reference_to = to.to_vec();
        self.relationship_name = Some(relationship);
        self
    }
    /// Picklist values; `default` (if any) is the value set on create.
    pub fn values(mut self, values: &[&'static str], default: Option<&'static str>) -> Self {
        self.picklist = values
            .iter()
            .map(|v| PicklistEntry {
                value: v,
                default: Some(*v) == default,
            })
            .collect();
        if default.is_some() {
            self.defaulted_on_create = true;
        }
        self
    }
    pub fn restricted(mut self) -> Self {
        self.restricted_picklist = true;
        self
    }

    pub fn default_value(&self) -> Option<&'static str> {
        self.picklist.iter().find(|p| p.default).map(|p| p.value)
    }

    /// Missing on create is an error.
    pub fn required_on_create(&self) -> bool {
        !self.nillable && self.createable && !self.defaulted_on_create
    }

    /// Kept in a lookup index so `=`/`IN` on it need not scan the table:
    /// key fields and lookups, but not owner and audit lookups, which have
    /// few distinct values.
    pub fn indexed(&self) -> bool {
        self.id_lookup
            || self.external_id
            || self.name_field
            || self.ftype == FieldType::Email
            || (self.ftype == FieldType::Reference
                && self.createable
                && self.relationship_name != Some("Owner"))
    }
}

/// One sObject as describe reports it.
#[derive(Debug)]
pub struct ObjectDef {
    pub name: &'static str,
    pub label: &'static str,
    pub label_plural: &'static str,
    pub key_prefix: &'static str,
    pub createable: bool,
    pub updateable: bool,
    pub deletable: bool,
    pub fields: Vec<FieldDef>,
    /// Position of IsDeleted, which every object has.
    pub is_deleted: usize,
    by_lower: HashMap<String, usize>,
}

impl ObjectDef {
    pub fn new(
        name: &'static str,
        label: &'static str,
        label_plural: &'static str,
        key_prefix: &'static str,
        fields: Vec<FieldDef>,
    ) -> ObjectDef {
        let by_lower = fields
            .iter()
            .enumerate()
            .map(|(i, f)| (f.name.to_ascii_lowercase(), i))
            .collect::<HashMap<String, usize>>();
        let is_deleted = by_lower.get("isdeleted").copied().unwrap_or(0);
        ObjectDef {
            name,
            label,
            label_plural,
            key_prefix,
            createable: true,
            updateable: true,
            deletable: true,
            fields,
            is_deleted,
            by_lower,
        }
    }

    /// Field index by API name, case-insensitively.
    pub fn field_index(&self, name: &str) -> Option<usize> {
        self.by_lower.get(&name.to_ascii_lowercase()).copied()
    }

    /// The reference field whose relationshipName is `relationship`.
    pub fn relationship(&self, relationship: &str) -> Option<usize> {
        self.fields.iter().position(|f| {
            f.relationship_name
                .is_some_and(|r| r.eq_ignore_ascii_case(relationship))
        })
    }
}

/// All simulated objects; the same for every org.
#[derive(Debug)]
pub struct Schema {
    pub objects: Vec<ObjectDef>,
    by_lower: HashMap<String, ObjId>,
    by_prefix: HashMap<&'static str, ObjId>,
}

impl Schema {
    fn new(objects: Vec<ObjectDef>) -> Schema {
        let by_lower = objects
            .iter()
            .enumerate()
            .map(|(i, o)| (o.name.to_ascii_lowercase(), i))
            .collect();
        let by_prefix = objects
            .iter()
            .enumerate()
            .map(|(i, o)| (o.key_prefix, i))
            .collect();
        Schema {
            objects,
            by_lower,
            by_prefix,
        }
    }

    /// Object by API name, case-insensitively.
    pub fn object_id(&self, name: &str) -> Option<ObjId> {
        self.by_lower.get(&name.to_ascii_lowercase()).copied()
    }

    pub fn object(&self, id: ObjId) -> &ObjectDef {
        &self.objects[id]
    }

    /// The object a (canonical) record id belongs to, by its key prefix.
    pub fn object_of_id(&self, id: &str) -> Option<ObjId> {
        id.get(..3).and_then(|p| self.by_prefix.get(p)).copied()
    }
}

/// The process-wide schema.
pub fn schema() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(|| Schema::new(super::objects::all()))
}
