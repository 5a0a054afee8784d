#!/usr/bin/python3
"""Generates the second evaluation book of bench/retrieval: *Water for
Caldmere*, an engineering history of a fictional city's water supply, in 15
Markdown chapters (a Docusaurus-style folder with book.json), and its
questions.

Everything here is original text written for bookd's benchmarks. Each section
has hand-written paragraphs that carry distinctive facts (the answers of the
questions) and deterministic "context" paragraphs assembled from sentence
templates: they talk about the same kinds of things (assets, places, years,
crews, figures) in every chapter, so that they act as realistic distractors
for retrieval. The output is identical on every run (the generator is seeded
by section names, not by the clock).

Usage: gen_book.py OUT_DIR
  writes OUT_DIR/caldmere/ (book.json + 15 .md chapters) and
  OUT_DIR/caldmere-questions.json (same format as questions.json).
"""
import json
import os
import random
import re
import sys

TITLE = "Water for Caldmere: An Engineering History of a City's Water Supply"

PLACES = [
    "Ashgrove", "Fellside", "Quarry Road", "Marsh End", "Beacon Hill", "Pennick", "Saltcote", "Windle",
    "Holloway", "Brennock", "Larch Common", "Stannery", "Cobb's Wharf", "Millgate", "Orrin Cross",
    "Thistleby", "Harrow Bridge", "Kessel", "Ridgeway", "Tanner's Lane",
]
PEOPLE = [
    "Edith Marrow", "Tobias Quill", "Hannah Strode", "Walter Penhale", "Ruth Asquith", "Daniel Okafor",
    "Margaret Lowe", "Samuel Feld", "Priya Raman", "Owen Treharne", "Clara Voss", "Joseph Lunt",
    "Alice Brandt", "Harold Birch", "Nadia Kerr", "Felix Ambrose",
]
FREQS = ["weekly", "fortnightly", "monthly", "quarterly", "six-monthly", "yearly"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December"]

# Context sentences: {asset} and {asset2} come from the chapter's own list,
# the other slots from the lists above or from random figures.
TEMPLATES = [
    "In {year} the {asset} at {place} was surveyed by {person}, whose notes record {n} defects, most of them minor.",
    "Crews based at the {place} depot visit the {asset} on a {freq} cycle, and every visit is logged against the asset's reference number.",
    "Operators learned early that the {asset} behaves differently in winter, when the water is colder and slower to respond to a change of settings.",
    "A report to the board in {year} put the cost of renewing the {asset} at about £{money} million, to be spread over {small} financial years.",
    "Much of the daily work is unglamorous: checking valves, clearing screens, reading gauges and writing down what was found.",
    "The {asset} is one of {small} similar installations in the city, and no two of them were built to quite the same drawings.",
    "When {person} retired in {year}, a notebook describing every quirk of the {asset} was left behind, and it is still consulted.",
    "Between {year} and {year2} the recorded throughput of the {asset} varied by no more than {pct} per cent from month to month.",
    "Visitors are often surprised by how quiet the {asset} is; most of the noise comes from ventilation fans rather than from the water.",
    "Spare parts for the {asset} are kept at {place}, where a small store holds gaskets, bearings and valve seats for the older equipment.",
    "The design life of the {asset} was set at {life} years, but careful upkeep has stretched it well beyond that.",
    "Each spring, staff from {place} walk round the {asset} and photograph anything that has changed since the last inspection.",
    "The minutes of {year} record a long argument between the engineers and the council over who should pay for work on the {asset}.",
    "Routine sampling near the {asset} shows stable conditions, with readings that rarely leave their expected band.",
    "New operators spend a week shadowing the shift team responsible for the {asset} at {place} before working alone.",
    "A temporary bypass was laid around the {asset} in {year} so that repairs could go ahead without interrupting supply.",
    "The {asset} and the {asset2} are managed together, because a change to one is felt at the other within hours.",
    "In the cold {month} of {year}, ice formed on the {asset} and crews worked in shifts for {small} days to keep it clear.",
    "{person} once described the {asset} as the part of the system that everyone forgets until it stops working.",
    "Drawings of the {asset} dating from {year} survive in the archive at {place}, annotated in several hands.",
    "Most alterations to the {asset} have been small, but together they have changed how it is operated more than any single project.",
    "During the refurbishment of {year}, {n} tonnes of material were removed from the {asset} and taken to {place} for disposal.",
    "Since {recent}, contractors working on the {asset} have had to hold a confined-space permit, and a standby person stays at the surface throughout.",
    "The {asset} was repainted in {year}, the first time since its construction that the original colour scheme had been changed.",
    "Figures gathered at {place} suggest that the {asset} now needs about {pct} per cent less attention than it did twenty years ago.",
    "Local residents have long used the path beside the {asset}, and the utility keeps it open except during major works.",
    "An audit in {year} found that records for the {asset} were split between {small} different filing systems, and they were merged the following year.",
    "Replacing the {asset} entirely has been proposed more than once, most recently in {year}, but refurbishment has always proved cheaper.",
    "On an ordinary day nobody needs to touch the {asset}; the work is in noticing early when something begins to drift.",
    "A small plaque at {place} names the {small} workers who died during construction of the {asset}.",
    "The {asset} is inspected with a camera on a {freq} basis, and the footage is kept so that changes can be compared over the years.",
    "The capacity of the {asset} was reassessed in {year} using flow records from the previous {small} years.",
    "{person} led the team that rebuilt the controls of the {asset} in {recent}, replacing relays with a programmable controller.",
    "Photographs from {year} show the {asset} surrounded by scaffolding and a temporary railway for moving materials.",
    "Lessons from the {asset} were written into the design standards used for every comparable project after {year}.",
    "Heavy rain in {month} {year} washed silt into the {asset}, and it took {small} weeks to restore normal operation.",
]

# Per chapter: file, title, the years and assets its context paragraphs talk about,
# an introduction, and sections of hand-written paragraphs.
CHAPTERS = [
    {
        "file": "01-wells.md",
        "years": (1855, 1935),
        "title": "Before the Pipes: Wells and Cholera",
        "assets": ["market pump", "town cistern", "well shafts", "settling ponds", "weir at Pennick", "first pumping engine"],
        "intro": "Caldmere grew along the River Ose in the eighteenth century as a town of mills, tanneries and warehouses. For most of that time its people drew water from shallow wells, collected rain in cisterns, or bought it from carriers who walked the streets with buckets on a yoke.",
        "sections": [
            ("Wells, Cisterns and Water Carriers", [
                "By 1830 the town had some 140 public wells, most of them less than ten metres deep, and the carriers charged a farthing for two buckets. Wealthier households kept their own cisterns under the yard, filled from the roof gutters, and guarded the keys jealously.",
            ]),
            ("The Outbreak of 1849", [
                "In the late summer of 1849 cholera killed 612 people in Caldmere in eleven weeks. The physician Agnes Tolley mapped the deaths house by house and found that almost all of them clustered around the pump in Tanner's Lane, whose well lay a few metres from a leaking cesspool.",
                "Her map was printed in the local newspaper and pinned up in the town hall, and it did more than any sermon to persuade the ratepayers that the wells had to go.",
            ]),
            ("The Caldmere Water Company", [
                "The Caldmere Water Company was founded in 1853 by a group of mill owners who wanted reliable water for their boilers as much as for the public. Its share capital was raised in a single afternoon at the Corn Exchange.",
            ]),
            ("The First Waterworks", [
                "The company's first works drew water from the Ose above the weir at Pennick and passed it through two settling ponds before it reached the town. Supply was intermittent: most streets received water for only two hours a day, and householders filled tubs and pans whenever the mains were charged.",
            ]),
            ("Municipal Ownership", [
                "The corporation bought the company out in 1879 for £486,000, arguing that clean water was too important to be left to shareholders. The purchase was financed by a loan repaid over sixty years from the water rate.",
            ]),
        ],
    },
    {
        "file": "02-catchment.md",
        "years": (1905, 2021),
        "title": "The Harrow Valley Catchment",
        "assets": ["moorland drains", "boundary fences", "gauging weir", "rain gauges", "peat dams", "catchment tracks"],
        "intro": "As the mills multiplied, the Ose became too dirty to drink even after settling. The corporation's engineers looked instead to the Harrow Valley, seventy kilometres to the north-west, where rain falls on empty moorland long before it reaches any town.",
        "sections": [
            ("Geology and Rainfall", [
                "The catchment covers 214 square kilometres of peat moorland over millstone grit, and it receives an average of 1,380 millimetres of rain a year, more than twice what falls on the city. The grit is almost impermeable, so most of that rain runs off quickly into the streams.",
            ]),
            ("Peat and Colour", [
                "Water draining from the peat is stained the colour of weak tea by dissolved organic carbon, and this colour, rather than bacteria, is the main thing the treatment works has to remove. It is strongest in autumn, when the first heavy rains flush out material that has built up over a dry summer.",
            ]),
            ("Land Management", [
                "Since 2006 the utility has blocked more than 90 kilometres of old drainage grips on the moor, letting the peat rewet and reducing the colour that runs off it. Grazing is limited to one sheep per two hectares on the wettest blanket bog.",
            ]),
            ("Wildlife and Access", [
                "The moor is a nesting ground for golden plover and merlin, and footpaths near the reservoir are closed between March and July to avoid disturbing them. Outside those months walkers are welcome, though dogs must be kept on leads.",
            ]),
        ],
    },
    {
        "file": "03-kessel-dam.md",
        "years": (1912, 2021),
        "title": "Kessel Dam",
        "assets": ["dam crest", "draw-off tower", "bellmouth spillway", "drainage gallery", "valve house", "upstream face"],
        "intro": "Kessel Dam is the heart of the system: every drop the city drinks in a normal year has been held behind it. This chapter describes how it was built and how it is kept safe.",
        "sections": [
            ("Design and Construction", [
                "Kessel Dam is a masonry-faced concrete gravity dam, 48 metres high and 402 metres long, completed in 1911 after nine years of work. Up to 1,100 navvies lived on site in a temporary village known as Tin Town, with its own school, mission hall and hospital.",
            ]),
            ("The Reservoir", [
                "When full, Kessel Water holds 61 million cubic metres, enough to supply the city for about 170 days without rain. It drowned the hamlet of Kessel itself, whose church spire reappears above the water in exceptionally dry summers.",
            ]),
            ("Spillway and Draw-off", [
                "Surplus water leaves through a bellmouth spillway nine metres across, a funnel that swallows floodwater and drops it down a vertical shaft into a tunnel beneath the dam.",
                "The draw-off tower has valves at four different levels, so that operators can choose the layer of water with the least colour and algae.",
            ]),
            ("Inspection and Safety", [
                "Under the reservoir safety law, a panel engineer inspects the dam at least once every ten years, and a supervising engineer visits twice a year. Seepage through the foundation is collected in a gallery and measured daily; a sudden increase is the first warning sign of internal erosion.",
            ]),
        ],
    },
    {
        "file": "04-aqueduct.md",
        "years": (1912, 2021),
        "title": "The Harrow Aqueduct",
        "assets": ["aqueduct channel", "inspection shafts", "siphon pipes", "tunnel portals", "overflow chambers", "access hatches"],
        "intro": "Between the reservoir and the city lie moors, a river valley and a ridge of hard sandstone. The aqueduct that crosses them was the most ambitious civil engineering work the corporation ever undertook.",
        "sections": [
            ("Route and Gradient", [
                "The aqueduct runs 73 kilometres from Kessel Dam to the treatment works at Fellside, falling just one metre in every 4,500 so that the water flows the whole way by gravity. For most of its length it is a covered channel of brick and concrete, buried a metre or two below the fields.",
            ]),
            ("The Brennock Tunnel", [
                "The longest single structure on the route is the Brennock Tunnel, 6.2 kilometres long, driven from both ends and from four intermediate shafts. When the headings met in 1907 they were out of line by only 38 millimetres.",
            ]),
            ("Siphons Across the Ose Valley", [
                "Where the route crosses the Ose valley, the water is carried down and up again through three parallel inverted siphons of riveted steel, each 1.2 metres in diameter. Between 1998 and 2003 the siphons were relined with cement mortar sprayed from a robotic lance, and one siphon was always kept in service.",
            ]),
            ("Travel Time", [
                "Water leaving the reservoir takes about 38 hours to reach Fellside, which gives the works a day and a half of warning if anything unusual enters the aqueduct upstream.",
            ]),
        ],
    },
    {
        "file": "05-fellside.md",
        "years": (1913, 2021),
        "title": "Treatment at Fellside",
        "assets": ["flotation tanks", "filter gallery", "chemical dosing plant", "clear water tank", "sludge thickeners", "blower house"],
        "intro": "Fellside Works opened in 1912 and was largely rebuilt in 1985. It turns brown moorland water into the clear, safe water that reaches the city's taps.",
        "sections": [
            ("Coagulation and Flocculation", [
                "Ferric sulphate replaced aluminium sulphate as the coagulant in 1993, partly because it works better on the highly coloured winter water. The dose is adjusted by an online colour monitor and typically ranges from 20 to 60 milligrams per litre.",
            ]),
            ("Dissolved Air Flotation", [
                "Instead of letting the floc settle, Fellside floats it: water saturated with air under pressure is released into the tanks, and millions of fine bubbles carry the floc to the surface, where it is scraped off as a sludge blanket.",
            ]),
            ("Filtration", [
                "The clarified water passes through 24 rapid gravity filters of sand and anthracite, each backwashed with air and water roughly every 48 hours.",
                "The Victorian slow sand filters were taken out of service in 1987, and their beds are now a wildflower meadow.",
            ]),
            ("Capacity", [
                "The works can treat up to 410 megalitres a day, although average summer output is closer to 300.",
            ]),
        ],
    },
    {
        "file": "06-disinfection.md",
        "years": (1950, 2021),
        "title": "Disinfection",
        "assets": ["contact tank", "ultraviolet reactors", "chlorine store", "ammonia dosing skid", "residual analysers", "sampling taps"],
        "intro": "Filtration removes most particles, but water must still be disinfected before it leaves the works, and enough disinfectant must survive the journey through the pipes to protect it all the way to the tap.",
        "sections": [
            ("From Chlorine to Chloramine", [
                "In 1996 Caldmere switched from free chlorine to chloramine for the water leaving Fellside, because chloramine forms far fewer trihalomethanes and lasts longer in the far ends of the network.",
            ]),
            ("The 2004 Outbreak", [
                "In October 2004 an outbreak of cryptosporidiosis made about 1,900 people ill; the parasite was traced to a cracked filter underdrain that let unfiltered water bypass the media. A boil-water notice covered the whole city for eleven days.",
            ]),
            ("Ultraviolet Treatment", [
                "Eight ultraviolet reactors were added after the filters in 2009, delivering a dose of at least 40 millijoules per square centimetre, which inactivates Cryptosporidium oocysts that chlorine cannot kill.",
            ]),
            ("Residuals at the Tap", [
                "The target is a total chlorine residual of at least 0.5 milligrams per litre at every customer tap; sampling points that fall below 0.2 trigger a flushing visit.",
            ]),
        ],
    },
    {
        "file": "07-pumping.md",
        "years": (1899, 2021),
        "title": "Pumping",
        "assets": ["engine house", "pump sets", "surge vessels", "switchroom", "rising main", "boiler house"],
        "intro": "Gravity brings water from the moors to Fellside, but the city is built on hills, and pumps must lift a large part of the supply to the reservoirs that serve the higher districts.",
        "sections": [
            ("Ashgrove and the Steam Age", [
                "The Ashgrove pumping station opened in 1898 with two triple-expansion steam engines, each lifting 18 megalitres a day to the hillside reservoirs. They ran until 1962 and are now steamed for visitors on the first Sunday of each month.",
            ]),
            ("Electric Pumps and Variable Speed", [
                "Variable-speed drives, fitted to the main pumps from 2011, let the pumps follow demand smoothly instead of switching on and off, and cut the energy used per megalitre by about 14 per cent.",
            ]),
            ("Energy", [
                "Pumping accounts for 62 per cent of the utility's electricity bill, so the control room shifts as much pumping as storage allows into the cheaper night-time hours.",
            ]),
            ("Surge", [
                "When a large pump stops suddenly, the column of water behind it can rebound as a pressure wave. Surge vessels at Ashgrove, steel tanks partly filled with compressed air, absorb these transients before they can split a main.",
            ]),
        ],
    },
    {
        "file": "08-pressure-zones.md",
        "years": (1927, 2021),
        "title": "Service Reservoirs and Pressure Zones",
        "assets": ["service reservoirs", "water tower", "pressure-reducing valves", "zone boundary valves", "altitude valves", "booster stations"],
        "intro": "Treated water does not go straight to the taps. It is stored close to the city in covered service reservoirs and towers, which smooth out the daily swing in demand and set the pressure in each district.",
        "sections": [
            ("Storage", [
                "The network has 31 covered service reservoirs, sized together to hold roughly 24 hours of average demand, so that a failure at Fellside does not immediately empty the taps.",
            ]),
            ("Pressure Zones", [
                "Because the city climbs from the river at 12 metres above datum to Beacon Hill at 212 metres, it is divided into seven pressure zones, each fed from a reservoir or tower at a suitable height.",
            ]),
            ("Beacon Hill Tower", [
                "The Beacon Hill water tower, a brick cylinder of 1926 topped by a steel tank holding 2,700 cubic metres, serves the highest zone and is a listed building.",
            ]),
            ("Standards of Service", [
                "The utility aims to deliver at least 15 metres of head at the boundary of every property, enough to fill an upstairs tank, and pays compensation when pressure falls below 7 metres for more than an hour.",
            ]),
        ],
    },
    {
        "file": "09-distribution.md",
        "years": (1900, 2021),
        "title": "The Distribution Network",
        "assets": ["trunk mains", "service pipes", "hydrants", "sluice valves", "washout points", "air valves"],
        "intro": "Below the streets lies the largest and least visible asset the utility owns: the pipes that carry water from the service reservoirs to every building in the city.",
        "sections": [
            ("Size and Age", [
                "There are about 3,900 kilometres of mains under Caldmere's streets; 28 per cent are Victorian or Edwardian cast iron, some of it more than 120 years old.",
            ]),
            ("Materials", [
                "Since 1994 almost all new and replacement mains have been polyethylene, joined by heating the pipe ends and pressing them together so that the joint is as strong as the pipe itself.",
            ]),
            ("Bursts", [
                "Bursts peak in January and February, when frost heave and the contraction of cold pipes put brittle cast iron under tension; a single hard week can bring sixty bursts.",
            ]),
            ("Renewal", [
                "The renewal rate is about one per cent of the network a year, which implies an average replacement cycle of a century. Pipe bursting, in which a hydraulic head splits the old main and pulls a new plastic pipe into its place, avoids digging up whole streets.",
            ]),
        ],
    },
    {
        "file": "10-leakage.md",
        "years": (1960, 2021),
        "title": "Leakage and Metering",
        "assets": ["district meters", "acoustic loggers", "boundary valves", "customer meters", "flow recorders", "leak noise correlator"],
        "intro": "Every litre that leaks has been collected, treated and often pumped. Finding and fixing leaks is therefore one of the cheapest ways to make more water available.",
        "sections": [
            ("District Metered Areas", [
                "The network is divided into 412 district metered areas, each fed through one or two metered inlets and typically serving between 1,000 and 3,000 properties.",
            ]),
            ("Night Flow", [
                "Between 3 and 4 in the morning, when almost everyone is asleep, the flow into a district consists mostly of leakage; a rising minimum night flow is the clearest sign of a new leak.",
            ]),
            ("Finding Leaks", [
                "Acoustic loggers clipped to valves listen overnight for the hiss of escaping water, and a correlator compares the sound arriving at two points to locate the leak to within a metre or so.",
            ]),
            ("Progress", [
                "Leakage fell from 31 per cent of water put into supply in 1995 to 17 per cent in 2022. About 58 per cent of households now have a meter, and average consumption is 128 litres per person per day.",
            ]),
        ],
    },
    {
        "file": "11-quality.md",
        "years": (1950, 2021),
        "title": "Water Quality and the Saltcote Laboratory",
        "assets": ["sample fridges", "incubators", "membrane filtration bench", "mass spectrometer", "sample vans", "reagent store"],
        "intro": "Treatment is only as good as the evidence that it works. The Saltcote Laboratory provides that evidence, sample by sample, every day of the year.",
        "sections": [
            ("Sampling", [
                "The Saltcote Laboratory analyses about 38,000 samples a year, taken from the reservoir, the works, the service reservoirs and randomly selected customer taps.",
                "Each sample is tested for coliform bacteria and E. coli by filtering 100 millilitres through a membrane and incubating it; none may be present in water leaving the works.",
            ]),
            ("Hardness", [
                "Caldmere's water is soft, with a hardness of about 35 milligrams per litre as calcium carbonate, so kettles rarely fur up but soap lathers easily.",
            ]),
            ("Lead", [
                "Soft upland water dissolves lead readily, so since 1999 orthophosphate has been dosed at about one milligram per litre to form a protective scale inside old lead service pipes.",
            ]),
            ("Taste and Odour", [
                "Earthy tastes in late summer come from geosmin produced by blue-green algae in the reservoir, which people can detect at a few nanograms per litre; powdered activated carbon is dosed when it appears.",
            ]),
        ],
    },
    {
        "file": "12-telemetry.md",
        "years": (1984, 2021),
        "title": "Telemetry and the Quarry Road Control Room",
        "assets": ["outstations", "radio masts", "control desks", "alarm panel", "telemetry servers", "standby generator"],
        "intro": "A water system spread over a whole region cannot be run by people on foot. Since the 1980s it has been watched and steered from a single control room.",
        "sections": [
            ("The Control Room", [
                "The control room at Quarry Road is staffed around the clock by two operators per shift, who watch about 2,300 outstations spread across the catchment, works and network.",
            ]),
            ("Polling and Alarms", [
                "Most outstations report every 15 minutes, but an alarm such as a reservoir high level or a pump trip is sent immediately.",
            ]),
            ("Security", [
                "The telemetry network is physically separate from the office network, and once a year the operators rehearse running the system by hand, with radio and paper logs, as if the computers had been lost to a cyber attack.",
            ]),
            ("Before Telemetry", [
                "Before telemetry, the level of each reservoir was telephoned in by a resident keeper every four hours; the last keeper's cottage, at Windle reservoir, was vacated in 1983.",
            ]),
        ],
    },
    {
        "file": "13-wastewater.md",
        "years": (1965, 2021),
        "title": "Wastewater and Drainage",
        "assets": ["interceptor sewer", "storm tanks", "aeration lanes", "digesters", "screen house", "outfall"],
        "intro": "What the city drinks it must also send away. The sewers and the works at Marsh End return used water to the Ose clean enough for the river to support fish again.",
        "sections": [
            ("Combined Sewers", [
                "The older half of the city has combined sewers, which carry rainwater and sewage in the same pipe, so heavy rain can overwhelm them.",
            ]),
            ("The Ose Interceptor", [
                "The Ose Interceptor, a brick-lined tunnel 2.4 metres across completed in 1964, collects the old outfalls along the riverbank and carries their flow to Marsh End.",
            ]),
            ("Marsh End Works", [
                "Marsh End treats the sewage of 610,000 people using the activated sludge process, in which aerated tanks cultivate bacteria that consume the dissolved organic matter.",
                "Sludge is digested in heated tanks to produce biogas, which generates about 40 per cent of the works' own electricity.",
            ]),
            ("Storm Overflows", [
                "Storm tanks at Marsh End hold 90,000 cubic metres; only when they are full does diluted storm sewage spill to the river, and every spill is now recorded and published.",
            ]),
        ],
    },
    {
        "file": "14-drought.md",
        "years": (1930, 2021),
        "title": "Drought and a Changing Climate",
        "assets": ["standpipes", "transfer pipeline", "river intake", "drought monitoring wells", "reservoir gauge boards", "emergency bowsers"],
        "intro": "A wet upland catchment does not make a city immune to drought. Long dry spells have tested the system several times, and the climate is making them more likely.",
        "sections": [
            ("The 1976 Drought", [
                "In the drought of 1976 Kessel Water fell to 19 per cent of capacity and standpipes were set up in 140 streets for six weeks.",
            ]),
            ("Drought Triggers", [
                "The drought plan restricts garden hoses if the reservoir is below 45 per cent of capacity at the start of July.",
            ]),
            ("The Ridgeway Transfer", [
                "Completed in 2015, the 27-kilometre Ridgeway pipeline can import up to 60 megalitres a day from the neighbouring Tarn river system during dry years.",
            ]),
            ("Options Rejected", [
                "A desalination plant on the estuary was studied in 2012 and rejected because it would have used about four times as much energy per litre as the existing supply.",
                "Projections suggest summer river flows could fall by a quarter by the 2050s, while winter storms become heavier.",
            ]),
        ],
    },
    {
        "file": "15-governance.md",
        "years": (1975, 2021),
        "title": "Governance, Money and Customers",
        "assets": ["billing system", "customer contact centre", "capital programme", "asset register", "board committees", "complaints process"],
        "intro": "Pipes and pumps are paid for by customers, and the organisation that runs them answers to regulators and to the public. This last chapter describes how.",
        "sections": [
            ("Ownership", [
                "Since 1974 water and sewerage have been run by the Caldmere Water Trust, a not-for-profit body whose surpluses must be reinvested in the system.",
            ]),
            ("Charges", [
                "A typical household bill in 2023 was £412 a year for water and sewerage together, with a social tariff that halves the bill for low-income customers.",
            ]),
            ("Investment", [
                "The current five-year capital programme is worth £1.2 billion, of which about a third goes to renewing mains and a quarter to reducing storm overflows.",
            ]),
            ("Customer Service", [
                "Written complaints must be answered within ten working days, and a customer whose supply is interrupted for more than twelve hours without warning receives an automatic payment.",
                "Drinking water quality is checked by an independent inspectorate, which can prosecute the trust if standards are broken.",
            ]),
        ],
    },
]

# Questions, phrased without the answer's own words where that is natural.
QUESTIONS = [
    ("How much did it cost to buy water from the street sellers before piped supply?", "01-wells.md", "the carriers charged a farthing for two buckets"),
    ("How did a doctor work out where the 1849 epidemic came from?", "01-wells.md", "The physician Agnes Tolley mapped the deaths house by house and found that almost all of them clustered around the pump in Tanner's Lane"),
    ("Who set up the first private water business, and what did they want it for?", "01-wells.md", "The Caldmere Water Company was founded in 1853 by a group of mill owners who wanted reliable water for their boilers as much as for the public."),
    ("For how long each day did the early mains actually carry water?", "01-wells.md", "most streets received water for only two hours a day"),
    ("When did the city take over the private supplier, and what did it pay?", "01-wells.md", "The corporation bought the company out in 1879 for £486,000"),
    ("How much rain does the upland gathering ground get in a year?", "02-catchment.md", "it receives an average of 1,380 millimetres of rain a year"),
    ("Why does the untreated water from the hills look brown?", "02-catchment.md", "Water draining from the peat is stained the colour of weak tea by dissolved organic carbon"),
    ("What has been done on the hills to reduce discoloured runoff?", "02-catchment.md", "Since 2006 the utility has blocked more than 90 kilometres of old drainage grips on the moor, letting the peat rewet"),
    ("During which months are walkers kept away from the reservoir shore, and why?", "02-catchment.md", "footpaths near the reservoir are closed between March and July to avoid disturbing them"),
    ("How tall and how long is the main dam?", "03-kessel-dam.md", "48 metres high and 402 metres long"),
    ("Where did the construction labourers live while the dam was being built?", "03-kessel-dam.md", "Up to 1,100 navvies lived on site in a temporary village known as Tin Town"),
    ("How many months could the full reservoir keep the city going without rainfall?", "03-kessel-dam.md", "enough to supply the city for about 170 days without rain"),
    ("How does floodwater get out of the lake when it is overfull?", "03-kessel-dam.md", "Surplus water leaves through a bellmouth spillway nine metres across"),
    ("How often must an independent expert examine the dam?", "03-kessel-dam.md", "a panel engineer inspects the dam at least once every ten years"),
    ("What is the gradient of the channel that brings water to the city?", "04-aqueduct.md", "falling just one metre in every 4,500 so that the water flows the whole way by gravity"),
    ("How accurately did the tunnelling gangs meet in the middle?", "04-aqueduct.md", "When the headings met in 1907 they were out of line by only 38 millimetres."),
    ("How is the supply carried across the river valley?", "04-aqueduct.md", "three parallel inverted siphons of riveted steel, each 1.2 metres in diameter"),
    ("How long is the journey from the dam to the treatment plant?", "04-aqueduct.md", "Water leaving the reservoir takes about 38 hours to reach Fellside"),
    ("Which chemical makes the particles clump together, and why was it changed?", "05-fellside.md", "Ferric sulphate replaced aluminium sulphate as the coagulant in 1993, partly because it works better on the highly coloured winter water."),
    ("Instead of letting clumps sink, how does the plant remove them?", "05-fellside.md", "millions of fine bubbles carry the floc to the surface, where it is scraped off as a sludge blanket"),
    ("How often is each sand bed cleaned by reversing the flow?", "05-fellside.md", "each backwashed with air and water roughly every 48 hours"),
    ("What became of the old Victorian filter beds?", "05-fellside.md", "their beds are now a wildflower meadow"),
    ("Why was the final disinfectant changed in the nineties?", "06-disinfection.md", "because chloramine forms far fewer trihalomethanes and lasts longer in the far ends of the network"),
    ("What let the parasite through in the 2004 outbreak?", "06-disinfection.md", "the parasite was traced to a cracked filter underdrain that let unfiltered water bypass the media"),
    ("What was added to kill bugs that chlorine cannot deal with?", "06-disinfection.md", "Eight ultraviolet reactors were added after the filters in 2009"),
    ("When can the public watch the old engines working?", "07-pumping.md", "are now steamed for visitors on the first Sunday of each month"),
    ("What did fitting adjustable-speed motors to the pumps save?", "07-pumping.md", "cut the energy used per megalitre by about 14 per cent"),
    ("What share of the power bill goes on lifting water?", "07-pumping.md", "Pumping accounts for 62 per cent of the utility's electricity bill"),
    ("What protects the mains from water hammer when a pump trips?", "07-pumping.md", "Surge vessels at Ashgrove, steel tanks partly filled with compressed air, absorb these transients"),
    ("Why is the city split into several separate pressure areas?", "08-pressure-zones.md", "Because the city climbs from the river at 12 metres above datum to Beacon Hill at 212 metres, it is divided into seven pressure zones"),
    ("What minimum pressure should a household receive?", "08-pressure-zones.md", "at least 15 metres of head at the boundary of every property"),
    ("What fraction of the underground pipes is old cast iron?", "09-distribution.md", "28 per cent are Victorian or Edwardian cast iron"),
    ("In which months do most pipe failures happen, and why?", "09-distribution.md", "Bursts peak in January and February, when frost heave and the contraction of cold pipes put brittle cast iron under tension"),
    ("How do analysts spot a new leak from flow records?", "10-leakage.md", "a rising minimum night flow is the clearest sign of a new leak"),
    ("How are hidden leaks pinpointed underground?", "10-leakage.md", "a correlator compares the sound arriving at two points to locate the leak to within a metre or so"),
    ("How much water does each resident use in a day?", "10-leakage.md", "average consumption is 128 litres per person per day"),
    ("Why don't kettles scale up in the city?", "11-quality.md", "Caldmere's water is soft, with a hardness of about 35 milligrams per litre as calcium carbonate"),
    ("How is metal from old household plumbing kept out of drinking water?", "11-quality.md", "since 1999 orthophosphate has been dosed at about one milligram per litre to form a protective scale inside old lead service pipes"),
    ("What causes a musty taste in late summer?", "11-quality.md", "Earthy tastes in late summer come from geosmin produced by blue-green algae in the reservoir"),
    ("How do the operators prepare for their computers being hacked?", "12-telemetry.md", "once a year the operators rehearse running the system by hand, with radio and paper logs"),
    ("How were reservoir levels reported before remote monitoring?", "12-telemetry.md", "the level of each reservoir was telephoned in by a resident keeper every four hours"),
    ("How is sewage cleaned biologically at the treatment plant?", "13-wastewater.md", "using the activated sludge process, in which aerated tanks cultivate bacteria that consume the dissolved organic matter"),
    ("How much of its own power does the sewage plant generate?", "13-wastewater.md", "which generates about 40 per cent of the works' own electricity"),
    ("How low did the reservoir get in the worst dry year on record?", "14-drought.md", "In the drought of 1976 Kessel Water fell to 19 per cent of capacity"),
    ("At what point are garden hoses banned?", "14-drought.md", "restricts garden hoses if the reservoir is below 45 per cent of capacity at the start of July"),
    ("Why was turning seawater into drinking water ruled out?", "14-drought.md", "it would have used about four times as much energy per litre as the existing supply"),
    ("Who runs the water services, and what happens to any profit?", "15-governance.md", "a not-for-profit body whose surpluses must be reinvested in the system"),
    ("How is the five-year investment budget divided?", "15-governance.md", "of which about a third goes to renewing mains and a quarter to reducing storm overflows"),
    ("What does a customer get after a long unplanned outage?", "15-governance.md", "a customer whose supply is interrupted for more than twelve hours without warning receives an automatic payment"),
]

WORD = re.compile(r"[^\W_]+")


def words(s):
    return " " + " ".join(w.lower() for w in WORD.findall(s)) + " "


def context_paragraph(rng, ch):
    assets, (lo, hi) = ch["assets"], ch["years"]
    picks = rng.sample(TEMPLATES, rng.randint(3, 5))
    out = []
    for t in picks:
        a, a2 = rng.sample(assets, 2)
        y = rng.randint(lo, hi)
        out.append(t.format(
            asset=a, asset2=a2, place=rng.choice(PLACES), person=rng.choice(PEOPLE), year=y,
            year2=min(hi + 2, y + rng.randint(3, 25)), recent=rng.randint(max(lo, 1976), 2021), n=rng.randint(4, 90), small=rng.randint(2, 9),
            money=rng.choice(["1.4", "2.8", "3.5", "6.2", "9.1", "12", "17"]), pct=rng.randint(2, 30),
            freq=rng.choice(FREQS), month=rng.choice(MONTHS), life=rng.choice([40, 50, 60, 80, 100])))
    s = " ".join(out)
    return s[0].upper() + s[1:]


def chapter_markdown(ch, position):
    rng = random.Random("caldmere/" + ch["file"])
    lines = ["---", "title: " + ch["title"], "sidebar_position: %d" % position, "---", "",
             "# " + ch["title"], "", ch["intro"], ""]
    lines += [context_paragraph(rng, ch), ""]
    for heading, paras in ch["sections"]:
        lines += ["## " + heading, ""]
        # Hand-written paragraphs first or after one context paragraph.
        ctx = [context_paragraph(rng, ch) for _ in range(rng.randint(1, 3))]
        at = rng.randint(0, min(1, len(ctx)))
        body = ctx[:at] + list(paras) + ctx[at:]
        for p in body:
            lines += [p, ""]
        if rng.random() < 0.3:
            lines += ["### Notes from the archive", "", context_paragraph(rng, ch), ""]
    lines += ["## Summary", "", context_paragraph(rng, ch), ""]
    return "\n".join(lines)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: gen_book.py OUT_DIR")
    out = sys.argv[1]
    book = os.path.join(out, "caldmere")
    os.makedirs(book, exist_ok=True)
    with open(os.path.join(book, "book.json"), "w") as f:
        json.dump({"title": TITLE, "author": "The bookd Authors", "language": "en"}, f, indent=2)
        f.write("\n")
    texts = {}
    for i, ch in enumerate(CHAPTERS, 1):
        md = chapter_markdown(ch, i)
        texts[ch["file"]] = words(md)
        with open(os.path.join(book, ch["file"]), "w") as f:
            f.write(md)
    # Every answer must occur in its chapter, and in no other chapter.
    for q, chapter, answer in QUESTIONS:
        a = words(answer)
        if a not in texts[chapter]:
            sys.exit("gen_book.py: answer not in %s: %s" % (chapter, answer))
        others = [c for c, t in texts.items() if c != chapter and a in t]
        if others:
            sys.exit("gen_book.py: answer also in %s: %s" % (others, answer))
    with open(os.path.join(out, "caldmere-questions.json"), "w") as f:
        json.dump({"book": "caldmere (bench/retrieval/gen_book.py)",
                   "questions": [{"q": q, "chapter": c, "answer": a} for q, c, a in QUESTIONS]},
                  f, indent=1, ensure_ascii=False)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(book, c["file"])) for c in CHAPTERS)
    nwords = sum(len(t.split()) for t in texts.values())
    print("gen_book.py: %d chapters, %d bytes, %d words, %d questions -> %s" %
          (len(CHAPTERS), total, nwords, len(QUESTIONS), out), file=sys.stderr)


if __name__ == "__main__":
    main()
