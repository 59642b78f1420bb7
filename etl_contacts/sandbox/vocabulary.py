"""The words sandbox contacts are made of: names and domains in many scripts, tags, attributes.

Real accounts are multilingual and messy, so the pools mix scripts, combining marks, emoji and
right-to-left text; every later stage (transform, warehouse, psql) has to carry them unharmed.
"""

from __future__ import annotations

STATUSES = ("OPEN", "INPROGRESS", "REVIEW", "ONHOLD", "DEPENDANCY", "CLOSED")
CHANNELS = ("website", "whatsapp", "facebook", "telegram")
CHANNEL_WEIGHTS = (0.40, 0.35, 0.15, 0.10)
LAST_MESSAGE_BY = ("user", "bot", "agent")
LAST_MESSAGE_BY_WEIGHTS = (0.50, 0.35, 0.15)

# (first names, last names, email domain) per script; weights say how common each script is
SCRIPTS = (
    (
        ("Ana", "John", "Zoë", "Chloé", "José", "Siobhán", "Łukasz", "Oluwaseun", "Mai", "Ngozi"),
        ("Silva", "O'Brien", "Müller", "Dubois", "García", "Kowalski", "Nguyễn", "van der Berg"),
        "Example.com",
    ),
    (("Дмитрий", "Анна", "Олег", "Мария"), ("Иванов", "Петрова", "Смирнов"), "пример.рф"),
    (("प्रिया", "राहुल", "अनीता", "विकास"), ("शर्मा", "वर्मा", "पटेल"), "उदाहरण.भारत"),
    (("محمد", "فاطمة", "أحمد", "ليلى"), ("العلي", "حسن", "الخطيب"), "مثال.مصر"),
    (("王", "李", "さくら", "김"), ("伟", "娜", "田中", "민준"), "例子.中国"),
    (("Σοφία", "Γιώργος"), ("Παππά", "Νικολάου"), "παράδειγμα.ελ"),
    (("🙂 Sam", "🌸 Aiko", "Max 🚀", "👩‍💻 Dev"), ("Lee", "Kaur", "⚡"), "example.io"),
)
SCRIPT_WEIGHTS = (0.40, 0.12, 0.12, 0.10, 0.12, 0.04, 0.10)

TAGS = ("vip", "newsletter", "lead", "churn-risk", "beta", "wholesale", "клиент", "⭐ top")
TAG_CHANCES = (0.05, 0.30, 0.20, 0.05, 0.10, 0.05, 0.15, 0.03)
SEGMENT_CHANCE = 0.12
N_SEGMENTS = 8
N_AGENTS = 12
N_BOTS = 3  # per channel
ATTRIBUTE_VARIANTS = 1024  # attribute lists per seed (details.attribute_variants)

PHONE_PREFIXES = ("91", "1", "44", "49", "55", "7", "86", "971", "+34", "+81", "0091", "")
PHONE_JUNK = ("n/a", "000", "call me", "98765abc", "+", "-")

CITIES = ("Pune", "São Paulo", "Köln", "東京", "القاهرة", "Москва", "Zürich", "Lagos")
NOTES = ('She said "hi"\n\tthen left', "back\\slash", "", "  padded  ", "ok 👍", "null")
MESSAGES = (
    "Hello!",
    "Здравствуйте 🙏",
    "مرحبا",
    "你好\uff0c在吗\uff1f",
    "Is my order shipped?",
    "ok",
    "",
)
SOURCES = ("ad", "organic", "referral", None)
