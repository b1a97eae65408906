//! Word lists the seeded data is drawn from, and the folding that turns a
//! display name into the ASCII part of an email address.

pub const FIRST_NAMES: &[&str] = &[
    "Ann",
    "James",
    "Maria",
    "Robert",
    "Linda",
    "Michael",
    "Barbara",
    "William",
    "Elizabeth",
    "David",
    "Jennifer",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Charles",
    "Karen",
    "Daniel",
    "Nancy",
    "Matthew",
    "Lisa",
    "Anthony",
    "Betty",
    "Mark",
    "Sandra",
    "Paul",
    "Ashley",
    "Steven",
    "Kimberly",
    "Andrew",
    "Emily",
    "Joshua",
    "Donna",
    "Kenneth",
    "Michelle",
    "Kevin",
    "Carol",
    "Brian",
    "Amanda",
    "George",
    "Melissa",
    "Timothy",
    "Deborah",
    "José",
    "Zoë",
    "Björn",
    "Siobhan",
    "Priya",
    "Wei",
    "Hiroshi",
    "Fatima",
    "Olga",
    "Mateo",
    "Chloé",
    "Aisha",
    "Lars",
    "Ngozi",
    "Rafael",
];

pub const LAST_NAMES: &[&str] = &[
    "Lee",
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Thompson",
    "White",
    "Harris",
    "Sanchez",
    "Clark",
    "Ramirez",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Torres",
    "Nguyen",
    "Hill",
    "Flores",
    "Green",
    "Adams",
    "Nelson",
    "Baker",
    "Hall",
    "Rivera",
    "Campbell",
    "O'Brien",
    "Müller",
    "Søren",
    "Núñez",
    "Kowalski",
    "Patel",
    "Chen",
    "Tanaka",
    "Okafor",
    "Ivanova",
    "D'Angelo",
    "van der Berg",
    "Smith-Jones",
    "Dubois",
    "Rossi",
];

pub const DOMAINS: &[&str] = &[
    "example.com",
    "example.org",
    "example.net",
    "mail.example.com",
    "acme.example",
    "globex.example",
    "initech.example",
    "umbrella.example",
    "hooli.example",
    "stark.example",
];

pub const COMPANY_HEADS: &[&str] = &[
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Hooli",
    "Stark",
    "Wayne",
    "Wonka",
    "Northwind",
    "Contoso",
    "Fabrikam",
    "Tailspin",
    "Vandelay",
    "Soylent",
    "Cyberdyne",
    "Tyrell",
    "Aperture",
    "Blue Sky",
    "Pied Piper",
    "Gringotts",
];

pub const COMPANY_TAILS: &[&str] = &[
    "Corp",
    "Inc.",
    "Logistics",
    "Health",
    "Labs",
    "Industries",
    "Partners",
    "Systems",
    "Foods",
    "Energy",
    "Media",
    "Holdings",
    "GmbH",
    "Ltd",
];

pub const CITIES: &[&str] = &[
    "San Francisco",
    "New York",
    "Chicago",
    "Austin",
    "Seattle",
    "Boston",
    "Denver",
    "London",
    "Berlin",
    "Paris",
    "Tel Aviv",
    "Tokyo",
    "São Paulo",
    "Toronto",
    "Sydney",
];

/// State (empty when the country has none in addresses), postal code,
/// country, latitude and longitude of each of [`CITIES`], in its order.
pub const CITY_PLACES: &[(&str, &str, &str, f64, f64)] = &[
    ("CA", "94105", "United States", 37.789_5, -122.394_2),
    ("NY", "10001", "United States", 40.750_7, -73.996_5),
    ("IL", "60601", "United States", 41.886_2, -87.618_9),
    ("TX", "78701", "United States", 30.270_1, -97.742_0),
    ("WA", "98101", "United States", 47.610_2, -122.334_9),
    ("MA", "02110", "United States", 42.357_4, -71.051_8),
    ("CO", "80202", "United States", 39.752_6, -104.999_3),
    ("", "EC2V 7HH", "United Kingdom", 51.514_8, -0.092_4),
    ("", "10117", "Germany", 52.517_0, 13.388_9),
    ("", "75001", "France", 48.860_6, 2.337_6),
    ("", "6688101", "Israel", 32.066_5, 34.777_8),
    ("Tokyo", "100-0005", "Japan", 35.681_2, 139.767_1),
    ("SP", "01310-100", "Brazil", -23.561_4, -46.655_9),
    ("ON", "M5H 2N2", "Canada", 43.650_7, -79.384_7),
    ("NSW", "2000", "Australia", -33.868_8, 151.209_3),
];

pub const STREETS: &[&str] = &[
    "Market Street",
    "Main Street",
    "Harbour Road",
    "King Street",
    "Park Avenue",
    "Mission Street",
    "Station Road",
    "Elm Street",
];

pub const TITLES: &[&str] = &[
    "CEO",
    "CFO",
    "VP Sales",
    "VP Marketing",
    "Director of Operations",
    "Marketing Manager",
    "Sales Representative",
    "Account Executive",
    "Customer Success Manager",
    "Software Engineer",
    "Product Manager",
    "HR Business Partner",
    "Office Manager",
    "Procurement Specialist",
    "IT Administrator",
];

pub const QUIZZES: &[&str] = &[
    "Onboarding Basics",
    "Advanced Reporting",
    "Security Awareness",
    "Product Tour 2024",
    "Admin Certification Prep",
];

pub const SUBJECTS: &[&str] = &[
    "Call",
    "Email",
    "Send Letter",
    "Send Quote",
    "Follow up",
    "Demo",
    "Renewal discussion",
    "Intro meeting",
];

pub const LOCATIONS: &[&str] = &["Zoom", "Google Meet", "Customer site", "HQ Room 4", "Phone"];

pub const CAMPAIGN_NAMES: &[&str] = &[
    "2024 Customer Conference",
    "Spring Webinar Series",
    "Q3 Email Nurture",
    "Partner Referral Program",
    "Trade Show - Berlin",
];

/// Users of every org: (first name, last name, title).
pub const USERS: &[(&str, &str, &str)] = &[
    ("Integration", "User", "Integration"),
    ("Grace", "Hopper", "VP Sales"),
    ("Alan", "Turing", "Sales Director"),
    ("Ada", "Lovelace", "Account Executive"),
    ("Edsger", "Dijkstra", "Account Executive"),
    ("Barbara", "Liskov", "Sales Engineer"),
    ("Donald", "Knuth", "Account Executive"),
    ("Frances", "Allen", "Customer Success Manager"),
    ("Ken", "Thompson", "Sales Development Rep"),
    ("Margaret", "Hamilton", "Marketing Manager"),
    ("Dennis", "Ritchie", "Sales Development Rep"),
    ("Radia", "Perlman", "Solutions Architect"),
    ("John", "McCarthy", "Account Executive"),
    ("Katherine", "Johnson", "Operations Analyst"),
    ("Tim", "Berners-Lee", "Partner Manager"),
    ("Hedy", "Lamarr", "Customer Success Manager"),
    ("Linus", "Torvalds", "Sales Engineer"),
    ("Shafi", "Goldwasser", "Account Executive"),
    ("Leslie", "Lamport", "Sales Operations"),
    ("Sophie", "Wilson", "Marketing Operations"),
];

/// Lower-case ASCII letters and digits of a name: accents dropped, other
/// characters (spaces, apostrophes, hyphens) removed. `"O'Brien"` → `"obrien"`.
pub fn slug(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars().flat_map(char::to_lowercase) {
        let folded = match c {
            'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' => 'a',
            'ç' => 'c',
            'è' | 'é' | 'ê' | 'ë' => 'e',
            'ì' | 'í' | 'î' | 'ï' => 'i',
            'ñ' => 'n',
            'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' => 'o',
            'ù' | 'ú' | 'û' | 'ü' => 'u',
            c => c,
        };
        if folded.is_ascii_alphanumeric() {
            out.push(folded);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn slug_folds_accents_and_drops_punctuation() {
        assert_eq!(super::slug("O'Brien"), "obrien");
        assert_eq!(super::slug("Núñez"), "nunez");
        assert_eq!(super::slug("van der Berg"), "vanderberg");
    }
}
